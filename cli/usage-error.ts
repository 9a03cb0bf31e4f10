/** A command line that cannot be run as given: exit 2 with the message, no stack. */
export class UsageError extends Error {
  readonly code = 'L7G_ERR_USAGE';
}
