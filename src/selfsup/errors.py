"""One exception type for mistakes a user can fix; the CLI prints its message as one line."""


class SelfsupError(Exception):
    """A user-facing error: the message says what is wrong and how to fix it."""
