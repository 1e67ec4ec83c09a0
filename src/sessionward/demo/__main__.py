"""``python -m sessionward.demo``: serve the demo (see :func:`sessionward.demo.server.main`)."""

from sessionward.demo.server import main

main()
