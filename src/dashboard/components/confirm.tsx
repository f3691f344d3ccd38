import type { ComponentChildren } from 'preact';
import { useRef, useState } from 'preact/hooks';
import { useSession } from '../session.js';
import { ErrorBox } from '../ui.js';

/**
 * A button that acts through the API after a confirmation dialog, with an optional form in it:
 * `onConfirm` gets that form's values (its inputs' `name`s). While the request runs the confirm
 * button says so; a refusal is shown in the dialog, which stays open; success closes it and
 * calls `onDone`.
 *
 * Rendered only for roles that may act: a viewer sees none. `data-action` (the label, lower
 * case) marks every action button, so tests can check that a viewer gets none; the dialog is
 * `data-testid="confirm-<label>"` and its confirm button `data-testid="confirm"`.
 */
export function ConfirmAction({
  label,
  title,
  children,
  confirmLabel,
  danger,
  onConfirm,
  onDone,
  disabled,
}: {
  label: string;
  /** The dialog's question. */
  title: string;
  /** What the dialog explains, and its inputs. */
  children?: ComponentChildren;
  /** The confirm button's text; the label by default. */
  confirmLabel?: string;
  danger?: boolean;
  disabled?: boolean;
  onConfirm(form: FormData): Promise<unknown>;
  onDone?(result: unknown): void;
}) {
  const { canOperate } = useSession();
  const dialog = useRef<HTMLDialogElement>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  if (!canOperate) return null;
  const name = label.toLowerCase();
  const open = () => {
    setError(null);
    dialog.current?.showModal();
  };
  const confirm = async (e: Event) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget as HTMLFormElement);
    setBusy(true);
    setError(null);
    try {
      const r = await onConfirm(form);
      dialog.current?.close();
      onDone?.(r);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <button
        type="button"
        class={danger ? 'danger' : ''}
        data-action={name}
        disabled={disabled}
        onClick={open}
      >
        {label}
      </button>
      <dialog ref={dialog} class="confirm" data-testid={`confirm-${name}`}>
        <form method="dialog" onSubmit={(e) => void confirm(e)}>
          <h3>{title}</h3>
          {children}
          <ErrorBox error={error} />
          <div class="dialog-buttons">
            <button type="button" onClick={() => dialog.current?.close()}>
              Cancel
            </button>
            <button type="submit" class={danger ? 'danger' : 'primary'} disabled={busy} data-testid="confirm">
              {busy ? 'Working…' : (confirmLabel ?? label)}
            </button>
          </div>
        </form>
      </dialog>
    </>
  );
}

/** A text field of a confirm dialog's form, trimmed; '' when empty or absent. */
export function formText(form: FormData, name: string): string {
  const v = form.get(name);
  return typeof v === 'string' ? v.trim() : '';
}
