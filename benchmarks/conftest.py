import sys
from pathlib import Path

# harness.py, run.py and torch_convlstm.py are scripts beside this file, imported as plain modules.
sys.path.insert(0, str(Path(__file__).parent))
