"""`python -m roimc ...`: the roimc command line (roimc.cli), as the `roimc` script runs it."""
from .cli import main

main(prog_name="roimc")
