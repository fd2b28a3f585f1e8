"""What every roimc command shares: expected failures become one line and exit status 1."""
import os
import sys

import click

from .errors import RmcError


def fail(message):
    """Print `roimc: error: message` on stderr and exit with status 1."""
    click.echo(f"roimc: error: {message}", err=True)
    sys.exit(1)


class Command(click.Command):
    """A click command whose RmcError, MemoryError, OSError and Ctrl-C end in one line, and
    whose output going to a reader that stopped early (`roimc info f | head`) ends quietly."""

    interrupted = "interrupted"

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except RmcError as exc:
            fail(str(exc))
        except MemoryError:
            fail("out of memory")
        except BrokenPipeError:   # not an error of ours: no message, and none at exit either
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
        except OSError as exc:
            name = f"{exc.filename}: " if exc.filename else ""
            fail(f"{name}{exc.strerror or exc}")
        except KeyboardInterrupt:
            fail(self.interrupted)
