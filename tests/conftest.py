import sys
from pathlib import Path

# reference.py is a test helper, importable as a plain module from the tests.
sys.path.insert(0, str(Path(__file__).parent))
