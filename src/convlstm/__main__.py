"""``python -m convlstm`` runs the ``convlstm`` command."""

import sys

from convlstm.cli import main

sys.exit(main())
