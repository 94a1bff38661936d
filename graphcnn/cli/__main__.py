"""``python -m graphcnn.cli``: the ``graphcnn`` command."""

from graphcnn.cli import main

main()
