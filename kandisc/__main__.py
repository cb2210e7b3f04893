"""``python -m kandisc`` = the ``kandisc`` command."""

from kandisc.entry import main

main()
