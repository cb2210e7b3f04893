"""``python -m kandisc`` = the ``kandisc`` command."""

from kandisc.cli import main

main()
