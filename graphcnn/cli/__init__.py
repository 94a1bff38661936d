"""The ``graphcnn`` command line (click): one module per command group.

:mod:`.app` holds the group and the error handling (a graphcnn error prints one located message
and exits 2, never a traceback) and lists the commands; :mod:`.options` declares the options the
commands share; :mod:`.render` draws every table. Commands: :mod:`.spec` (list, check, dump,
profile), :mod:`.passes` (passes), :mod:`.analyze`, :mod:`.compile`, :mod:`.onnx_import`
(import), :mod:`.bench`.
"""

from graphcnn.cli.app import main

__all__ = ["main"]
