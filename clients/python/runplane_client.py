"""runplane learner client: heartbeats, metrics and control commands for a training script.

Single file, standard library only, Python 3.9+. Copy it next to your trainer or put this
directory on PYTHONPATH.

    from runplane_client import Learner

    with Learner() as learner:            # RUNPLANE_CONTROLLER_URL, RUNPLANE_RUN_ID, RUNPLANE_RUN_TOKEN
        learner.on_tune(lambda p: set_lr(p["learning_rate"]) if "learning_rate" in p else None)
        for step in range(steps):
            learner.wait_while_paused()
            if learner.should_stop:
                break
            loss = train_step()
            learner.update(step=step, loss=loss, samples_per_sec=rate)
            learner.report_metrics(step, {"loss": loss})
    # leaving the block sends a final heartbeat and finishes the run ("completed", or
    # "failed" when the block raised, or "terminated" after a terminate command)

Two daemon threads do the I/O: one heartbeats at the controller's cadence (the
``next_heartbeat_s`` of each answer), one long-polls ``commands/next`` and runs the handlers
one command at a time, acknowledging each after its handler returns. Commands are delivered
at least once; a redelivered command id is acknowledged again without running its handler
twice. 429 answers are retried after their Retry-After, 5xx and network errors with
exponential backoff and jitter.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import random
import socket
import ssl
import threading
import time
import urllib.parse
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

__all__ = ["ApiError", "Learner", "HEARTBEAT_STATUSES", "FINISH_STATUSES"]
__version__ = "0.1.0"

HEARTBEAT_STATUSES = ("running", "paused", "terminating", "errored")
FINISH_STATUSES = ("completed", "failed", "terminated")

Handler = Callable[[Dict[str, Any]], Any]

log = logging.getLogger("runplane")


class ApiError(Exception):
    """An error answer of the runplane API (status 0: the controller could not be reached)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Optional[List[Dict[str, Any]]] = None,
        retry_after_s: Optional[float] = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []
        self.retry_after_s = retry_after_s

    @property
    def retryable(self) -> bool:
        """429, 5xx and network errors are worth retrying; other 4xx answers are not."""
        return self.status == 0 or self.status == 429 or self.status >= 500


class _Closed(Exception):
    """The learner is closing: a blocking call was interrupted on purpose."""


def _backoff(attempt: int, base_s: float, cap_s: float, rng: random.Random) -> float:
    """Exponential backoff with 'equal jitter': half fixed, half random, so retries spread."""
    d = min(cap_s, base_s * (2 ** min(attempt, 20)))
    return d / 2 + rng.random() * d / 2


class Learner:
    """Reports one run's progress to runplane and receives its control commands.

    Arguments default to the environment a runplane job gets: ``RUNPLANE_CONTROLLER_URL``,
    ``RUNPLANE_RUN_ID`` and ``RUNPLANE_RUN_TOKEN``.
    """

    def __init__(
        self,
        controller_url: Optional[str] = None,
        run_id: Optional[str] = None,
        token: Optional[str] = None,
        *,
        command_wait_s: float = 30.0,
        request_timeout_s: float = 30.0,
        on_error: Optional[Callable[[Exception], Any]] = None,  # default: the "runplane" logger
        ssl_context: Optional[ssl.SSLContext] = None,
        seed: Optional[int] = None,
    ) -> None:
        url = controller_url or os.environ.get("RUNPLANE_CONTROLLER_URL")
        self.run_id = run_id or os.environ.get("RUNPLANE_RUN_ID") or ""
        self.token = token or os.environ.get("RUNPLANE_RUN_TOKEN") or ""
        if not url or not self.run_id or not self.token:
            raise ValueError(
                "the controller URL, run id and run token are needed: pass them or set "
                "RUNPLANE_CONTROLLER_URL, RUNPLANE_RUN_ID and RUNPLANE_RUN_TOKEN"
            )
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"controller URL must be http(s)://host[:port], got {url!r}")
        self.controller_url = url.rstrip("/")
        self._scheme = parsed.scheme
        self._host = parsed.hostname
        self._port = parsed.port
        self._prefix = parsed.path.rstrip("/")
        self._ssl = ssl_context
        self._run_path = f"{self._prefix}/api/v1/runs/{urllib.parse.quote(self.run_id, safe='')}"
        # At least 1 s: a zero wait would turn the command thread into a busy loop.
        self.command_wait_s = max(1.0, min(60.0, command_wait_s))
        self.request_timeout_s = request_timeout_s
        self._on_error = on_error
        self._rng = random.Random(seed)

        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._state: Dict[str, Any] = {
            "status": "running",
            "step": 0,
            "samples_per_sec": 0.0,
            "loss": 0.0,
            "checkpoint_version": 0,
        }
        self._notes: Optional[str] = None
        self._handlers: Dict[str, Optional[Handler]] = {
            "tune": None,
            "pause": None,
            "resume": None,
            "terminate": None,
        }
        #: Ids of commands received and not yet acknowledged (reported as queued_commands).
        self._queued: List[str] = []
        #: Ids whose handler has run: a redelivery is acknowledged without running it again.
        self._handled: Set[str] = set()
        self.paused = False
        #: The payload of the terminate command once one arrived (reason, final_checkpoint).
        self.terminate_request: Optional[Dict[str, Any]] = None
        #: The tunables received so far, merged (learning_rate, entropy_coef, clip_epsilon).
        self.hyperparameters: Dict[str, Any] = {}
        #: The status and health the controller reported in its last heartbeat answer.
        self.server_status: Optional[Dict[str, Any]] = None
        self.heartbeat_interval_s = 15.0
        self.heartbeats_sent = 0
        #: Why the last heartbeat or command request failed, if it did.
        self.last_error: Optional[Exception] = None

        self._started = False
        self._closing = threading.Event()
        self._closed = False
        self._hb_wake = threading.Event()
        self._hb_thread: Optional[threading.Thread] = None
        self._cmd_thread: Optional[threading.Thread] = None
        self._poll_conn: Optional[http.client.HTTPConnection] = None
        self._last_sent: Optional[Dict[str, Any]] = None

    # -- handlers ----------------------------------------------------------------------------

    def on_tune(self, handler: Handler) -> Handler:
        """Called with the tune payload (learning_rate, entropy_coef, clip_epsilon, notes).
        Usable as a decorator."""
        self._handlers["tune"] = handler
        return handler

    def on_pause(self, handler: Handler) -> Handler:
        """Called on pause, after ``paused`` is set and the reported status became 'paused'."""
        self._handlers["pause"] = handler
        return handler

    def on_resume(self, handler: Handler) -> Handler:
        """Called on resume, after ``paused`` is cleared and the status is 'running' again."""
        self._handlers["resume"] = handler
        return handler

    def on_terminate(self, handler: Handler) -> Handler:
        """Called with the terminate payload (reason, final_checkpoint), after ``should_stop``
        became true and the status 'terminating'."""
        self._handlers["terminate"] = handler
        return handler

    # -- the trainer's side ------------------------------------------------------------------

    def update(
        self,
        step: Optional[int] = None,
        loss: Optional[float] = None,
        samples_per_sec: Optional[float] = None,
        checkpoint_version: Optional[int] = None,
        status: Optional[str] = None,
        notes: Optional[str] = None,
    ) -> None:
        """Sets the state the next heartbeat reports. ``step`` and ``checkpoint_version`` must
        never go down (the controller refuses a regression)."""
        if status is not None and status not in HEARTBEAT_STATUSES:
            raise ValueError(f"status must be one of {HEARTBEAT_STATUSES}, got {status!r}")
        with self._lock:
            if step is not None:
                self._state["step"] = int(step)
            if loss is not None:
                self._state["loss"] = float(loss)
            if samples_per_sec is not None:
                self._state["samples_per_sec"] = float(samples_per_sec)
            if checkpoint_version is not None:
                self._state["checkpoint_version"] = int(checkpoint_version)
            if status is not None:
                self._state["status"] = status
            if notes is not None:
                self._notes = notes

    @property
    def state(self) -> Dict[str, Any]:
        with self._lock:
            return dict(self._state)

    @property
    def should_stop(self) -> bool:
        """True once a terminate command arrived (or the learner is closing)."""
        return self.terminate_request is not None or self._closing.is_set()

    def wait_while_paused(self, timeout: Optional[float] = None) -> bool:
        """Blocks while the run is paused (heartbeats go on, reporting 'paused'). Returns early
        when a terminate command arrives or the learner closes; returns False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self.paused or self.should_stop, timeout)

    def report_metrics(self, step: int, values: Dict[str, float], retries: int = 5) -> int:
        """Posts metric values at ``step``; retries 429/5xx/network errors with backoff.
        Returns how many values the controller accepted."""
        body = {"step": int(step), "values": {k: float(v) for k, v in values.items()}}
        attempt = 0
        while True:
            try:
                _, answer, _ = self._request("POST", f"{self._run_path}/metrics", body)
                return int((answer or {}).get("accepted", 0))
            except ApiError as err:
                if not err.retryable or attempt >= retries:
                    raise
                delay = err.retry_after_s if err.status == 429 and err.retry_after_s else None
                if delay is None:
                    delay = _backoff(attempt, 0.25, 5.0, self._rng)
                attempt += 1
                time.sleep(delay)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> "Learner":
        """Sends the first heartbeat (so the run shows 'running' at once; a refused one, e.g.
        a wrong token, raises ApiError) and starts the heartbeat and command threads. Set the
        initial state with update() first if it is not step 0, loss 0."""
        if self._started:
            return self
        first_delay = 0.0
        try:
            self._send_heartbeat()
            first_delay = self.heartbeat_interval_s
        except ApiError as err:
            # A wrong token, run id or URL path is a mistake to show at once; an unreachable or
            # busy controller is not: the heartbeat thread keeps trying.
            if not err.retryable:
                raise
            self._report(err)
            first_delay = err.retry_after_s or _backoff(0, 0.5, 15.0, self._rng)
        self._started = True
        self._hb_thread = threading.Thread(
            target=self._heartbeat_loop, args=(first_delay,), name="runplane-heartbeat", daemon=True
        )
        self._cmd_thread = threading.Thread(target=self._command_loop, name="runplane-commands", daemon=True)
        self._hb_thread.start()
        self._cmd_thread.start()
        return self

    def close(self, status: Optional[str] = None, error: Optional[str] = None) -> Optional[Dict[str, Any]]:
        """Stops both threads, sends a final heartbeat if the state changed since the last
        accepted one, and finishes the run with ``status``: 'completed' (default), 'failed' or
        'terminated' (default after a terminate command). Returns the run as the controller
        has it (None if the learner never started). Idempotent; may be called from a handler."""
        if self._closed:
            return None
        self._closed = True
        if status is None:
            status = "terminated" if self.terminate_request is not None else "completed"
        if status not in FINISH_STATUSES:
            raise ValueError(f"status must be one of {FINISH_STATUSES}, got {status!r}")
        self._closing.set()
        self._hb_wake.set()
        with self._cond:
            self._cond.notify_all()
        for t in (self._cmd_thread, self._hb_thread):
            # close() may be called from a handler, i.e. on the command thread itself.
            while t is not None and t.is_alive() and t is not threading.current_thread():
                # Interrupts the long-poll the command thread may be blocked in (again, in case
                # it was still connecting the first time).
                self._interrupt_poll()
                t.join(0.05)
        run = None
        if not self._started:
            return None  # nothing was reported, so there is nothing to finish
        # Commands whose handler ran but whose ack failed: acknowledge them now, since no
        # redelivery will reach this learner any more.
        with self._lock:
            unacked = [cid for cid in self._queued if cid in self._handled]
        for cid in unacked:
            self._ack(cid, retries=0)
        self._final_heartbeat()
        body: Dict[str, Any] = {"status": status}
        if error is not None:
            body["error"] = error[:4096]
        for attempt in range(6):
            try:
                _, run, _ = self._request("POST", f"{self._run_path}/finish", body)
                break
            except ApiError as err:
                if not err.retryable or attempt == 5:
                    self._report(err)
                    break
                time.sleep(err.retry_after_s or _backoff(attempt, 0.25, 5.0, self._rng))
        return run

    def __enter__(self) -> "Learner":
        return self.start()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc is None:
            self.close()
        elif isinstance(exc, KeyboardInterrupt):
            self.close("terminated", "interrupted")
        else:
            self.close("failed", f"{exc_type.__name__}: {exc}")

    # -- heartbeats --------------------------------------------------------------------------

    def _heartbeat_body(self) -> Dict[str, Any]:
        with self._lock:
            body: Dict[str, Any] = {"run_id": self.run_id, **self._state}
            body["queued_commands"] = list(self._queued)
            if self._notes is not None:
                body["notes"] = self._notes
            return body

    def _send_heartbeat(self) -> Dict[str, Any]:
        body = self._heartbeat_body()
        _, answer, _ = self._request("POST", f"{self._run_path}/heartbeat", body)
        self._last_sent = body
        self.heartbeats_sent += 1
        answer = answer or {}
        self.server_status = answer.get("run")
        nxt = answer.get("next_heartbeat_s")
        if isinstance(nxt, (int, float)) and nxt > 0:
            self.heartbeat_interval_s = float(nxt)
        return answer

    def _heartbeat_loop(self, first_delay: float) -> None:
        failures = 0
        self._hb_wake.wait(first_delay)
        while not self._closing.is_set():
            try:
                self._send_heartbeat()
                failures = 0
                delay = self.heartbeat_interval_s
            except ApiError as err:
                self._report(err)
                if err.status == 429:
                    # Never sooner than the controller allows; up to 10% jitter after it.
                    after = err.retry_after_s or 5.0
                    delay = after + self._rng.random() * max(0.1, after * 0.1)
                elif err.retryable:
                    delay = _backoff(failures, 0.5, self.heartbeat_interval_s, self._rng)
                    failures += 1
                else:
                    # 409 regression, 422, 404, 401: the next state may be valid again.
                    delay = self.heartbeat_interval_s
            except Exception as err:  # a bug must not kill the liveness signal
                self._report(err)
                delay = self.heartbeat_interval_s
            self._hb_wake.wait(delay)
            self._hb_wake.clear()

    def _interrupt_poll(self) -> None:
        conn = self._poll_conn
        sock = conn.sock if conn is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _final_heartbeat(self) -> None:
        if self._heartbeat_body() == self._last_sent:
            return  # the controller already has this state; spare a 429 wait
        for attempt in range(4):
            try:
                self._send_heartbeat()
                return
            except ApiError as err:
                if err.status == 429:
                    time.sleep(min(err.retry_after_s or 5.0, 10.0))
                elif err.retryable and attempt < 3:
                    time.sleep(_backoff(attempt, 0.25, 2.0, self._rng))
                else:
                    self._report(err)
                    return

    # -- commands ----------------------------------------------------------------------------

    def _command_loop(self) -> None:
        failures = 0
        while not self._closing.is_set():
            try:
                command = self._next_command()
                failures = 0
                if command is not None:
                    self._handle(command)
            except _Closed:
                return
            except ApiError as err:
                if self._closing.is_set():
                    return
                self._report(err)
                delay = err.retry_after_s if err.status == 429 and err.retry_after_s else None
                if delay is None:
                    delay = _backoff(failures, 0.5, 15.0, self._rng)
                failures += 1
                self._closing.wait(delay)
            except Exception as err:
                self._report(err)
                self._closing.wait(1.0)

    def _next_command(self) -> Optional[Dict[str, Any]]:
        wait = int(self.command_wait_s)
        path = f"{self._run_path}/commands/next?wait={wait}"
        status, command, _ = self._request("GET", path, None, timeout=wait + self.request_timeout_s, poll=True)
        return command if status == 200 and command else None

    def _handle(self, command: Dict[str, Any]) -> None:
        cid = str(command.get("id"))
        ctype = command.get("type")
        payload = command.get("payload") or {}
        with self._lock:
            if cid not in self._handled and cid not in self._queued:
                self._queued.append(cid)
        if cid not in self._handled:
            self._apply(ctype, payload)
            handler = self._handlers.get(ctype) if isinstance(ctype, str) else None
            if handler is not None:
                # A handler that raises leaves the command unacknowledged: the controller
                # delivers it again after its visibility timeout.
                try:
                    handler(payload)
                except Exception as err:
                    self._report(err)
                    return
            self._handled.add(cid)
        self._ack(cid)

    def _apply(self, ctype: Any, payload: Dict[str, Any]) -> None:
        with self._cond:
            if ctype == "tune":
                self.hyperparameters.update({k: v for k, v in payload.items() if k != "notes"})
            elif ctype == "pause":
                self.paused = True
                if self._state["status"] == "running":
                    self._state["status"] = "paused"
            elif ctype == "resume":
                self.paused = False
                if self._state["status"] == "paused":
                    self._state["status"] = "running"
            elif ctype == "terminate":
                self.terminate_request = dict(payload)
                self._state["status"] = "terminating"
            self._cond.notify_all()

    def _ack(self, cid: str, retries: int = 7) -> None:
        path = f"{self._run_path}/commands/{urllib.parse.quote(cid, safe='')}/ack"
        for attempt in range(retries + 1):
            try:
                self._request("POST", path, {})
                break
            except ApiError as err:
                if not err.retryable or attempt == retries or self._closing.is_set():
                    # Left in queued_commands; the redelivery acknowledges it.
                    self._report(err)
                    return
                self._closing.wait(err.retry_after_s or _backoff(attempt, 0.25, 5.0, self._rng))
        with self._lock:
            if cid in self._queued:
                self._queued.remove(cid)

    # -- HTTP --------------------------------------------------------------------------------

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        if self._scheme == "https":
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=timeout, context=self._ssl or ssl.create_default_context()
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def _request(
        self,
        method: str,
        path: str,
        body: Optional[Dict[str, Any]],
        timeout: Optional[float] = None,
        poll: bool = False,
    ) -> Tuple[int, Any, Dict[str, str]]:
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/json",
            "User-Agent": f"runplane-python/{__version__}",
        }
        # A job's process continues the trace it was launched in (TRACEPARENT, set by the
        # controller), so what it reports lands in that trace.
        traceparent = os.environ.get("TRACEPARENT")
        if traceparent:
            headers["traceparent"] = traceparent
        data = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":"), allow_nan=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        conn = self._connection(timeout or self.request_timeout_s)
        if poll:
            self._poll_conn = conn
        try:
            if poll and self._closing.is_set():
                raise _Closed()
            conn.request(method, path, body=data, headers=headers)
            res = conn.getresponse()
            raw = res.read()
            status = res.status
            res_headers = {k.lower(): v for k, v in res.getheaders()}
        except (OSError, http.client.HTTPException) as err:
            if poll and self._closing.is_set():
                raise _Closed() from err
            raise ApiError(0, "UNREACHABLE", f"cannot reach {self.controller_url}: {err}") from err
        finally:
            if poll:
                self._poll_conn = None
            conn.close()
        parsed: Any = None
        if raw:
            try:
                parsed = json.loads(raw.decode("utf-8"))
            except ValueError:
                parsed = raw.decode("utf-8", "replace")
        if status >= 400:
            err = parsed.get("error") if isinstance(parsed, dict) else None
            err = err if isinstance(err, dict) else {}
            retry_after = None
            if "retry-after" in res_headers:
                try:
                    retry_after = max(0.0, float(res_headers["retry-after"]))
                except ValueError:
                    retry_after = None
            raise ApiError(
                status,
                str(err.get("code") or f"HTTP_{status}"),
                str(err.get("message") or f"HTTP {status}"),
                err.get("details") or [],
                retry_after,
            )
        return status, parsed, res_headers

    def _report(self, err: Exception) -> None:
        self.last_error = err
        if self._on_error is None:
            log.warning("runplane learner: %s", err)
            return
        try:
            self._on_error(err)
        except Exception:
            pass  # an error callback that raises must not stop the threads
