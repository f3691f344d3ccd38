import type { Command } from 'commander';
import { clientFrom, type GlobalOptions } from './context.js';
import { printJson, printTable, printView } from './output.js';

export function registerToken(program: Command, globals: () => GlobalOptions): void {
  const token = program.command('token').description('issue, list and revoke API tokens (admin)');
  token
    .command('create')
    .description('issue a token; it is shown once')
    .requiredOption('--role <role>', 'admin, operator, viewer or worker')
    .option('--name <name>', 'what the token is for')
    .option('--json', 'print JSON')
    .action(async (o: { role: string; name?: string; json?: boolean }) => {
      const t = await clientFrom(globals()).createToken(o.role, o.name);
      printView(t, o.json, (x) => x.token);
    });
  token
    .command('list')
    .description('list tokens (never their secrets)')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const { tokens } = await clientFrom(globals()).listTokens();
      if (o.json) return printJson({ tokens });
      printTable(
        ['TOKEN', 'NAME', 'ROLE', 'CREATED', 'REVOKED'],
        tokens.map((t) => [t.token_id, t.name, t.role, t.created_at, t.revoked_at]),
      );
    });
  token
    .command('revoke')
    .description('revoke a token')
    .argument('<token_id>')
    .action(async (id: string) => {
      await clientFrom(globals()).revokeToken(id);
      process.stdout.write(`${id} revoked\n`);
    });
}
