import sys

from opsd.runner import main
from tasks.registry import TASKS

sys.exit(main(None, TASKS))
