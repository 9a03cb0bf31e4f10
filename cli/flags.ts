/**
 * node:util parseArgs with errors a person can act on: an unknown flag is named with the nearest
 * known ones (`unknown flag --listn (did you mean --listen?)`) and the hint names the command's
 * --help, instead of the whole usage text pushing the error off the screen.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { nearNames, orList } from './near-name.js';
import { UsageError } from './usage-error.js';

/** The hint line of every usage error: where the flags are listed. */
export const seeHelp = (command: string): string => `See 'l7guard ${command} --help'.`;

/** ` (did you mean --listen?)` when some known names are near `typed`, else empty. */
export function didYouMean(typed: string, known: Iterable<string>, prefix = ''): string {
  const near = nearNames(typed, known).map((n) => prefix + n);
  return near.length === 0 ? '' : ` (did you mean ${orList(near)}?)`;
}

/** `unknown subcommand "lst" (did you mean list?)`. */
export function unknownSubcommand(typed: string, known: readonly string[]): UsageError {
  return new UsageError(`unknown subcommand "${typed}"${didYouMean(typed, known)}`);
}

/** parseArgs (strict unless the config says otherwise); `command` ("serve", "policy trace") names the --help to see. */
export function parseFlags<T extends ParseArgsConfig>(command: string, config: T): ReturnType<typeof parseArgs<T>> {
  const options = config.options ?? {};
  const unknown = unknownFlag(config, options);
  if (unknown !== undefined) {
    const mean = unknown.startsWith('--') ? didYouMean(unknown.slice(2), Object.keys(options), '--') : '';
    throw new UsageError(`unknown flag ${unknown}${mean}`, { help: command });
  }
  try {
    return parseArgs<T>({ strict: true, ...config });
  } catch (err) {
    throw new UsageError(parseArgsMessage(err as Error & { code?: string }), { help: command });
  }
}

/** The first flag the config does not define, as typed (`--listn`, `-x`), found without throwing. */
function unknownFlag(config: ParseArgsConfig, options: NonNullable<ParseArgsConfig['options']>): string | undefined {
  if (config.strict === false) return undefined;
  const { tokens } = parseArgs({ args: config.args, options, strict: false, allowPositionals: true, tokens: true });
  for (const tok of tokens) if (tok.kind === 'option' && !Object.hasOwn(options, tok.name)) return tok.rawName;
  return undefined;
}

/** parseArgs's other complaints, reworded: a flag without its value, a value for a switch, a stray word. */
function parseArgsMessage(err: Error & { code?: string }): string {
  const flag = /'(?:-\w, )?(--[\w-]+)/.exec(err.message)?.[1];
  if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && flag !== undefined) {
    if (err.message.includes('does not take an argument')) return `${flag} takes no value`;
    if (err.message.includes('is ambiguous')) return `${flag} needs a value (one that starts with "-" is written ${flag}=-VALUE)`;
    return `${flag} needs a value`;
  }
  const word = /^Unexpected argument '(.*)'\. /.exec(err.message)?.[1];
  if (err.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL' && word !== undefined) return `unexpected argument ${JSON.stringify(word)}`;
  return err.message.charAt(0).toLowerCase() + err.message.slice(1);
}
