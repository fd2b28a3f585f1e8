"""What every roimc command shares: expected failures become one line and exit status 1."""
import sys

import click

from .errors import RmcError


def fail(message):
    """Print `roimc: error: message` on stderr and exit with status 1."""
    click.echo(f"roimc: error: {message}", err=True)
    sys.exit(1)


class Command(click.Command):
    """A click command whose RmcError, MemoryError, OSError and Ctrl-C end in one line."""

    interrupted = "interrupted"

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except RmcError as exc:
            fail(str(exc))
        except MemoryError:
            fail("out of memory")
        except OSError as exc:
            name = f"{exc.filename}: " if exc.filename else ""
            fail(f"{name}{exc.strerror or exc}")
        except KeyboardInterrupt:
            fail(self.interrupted)
