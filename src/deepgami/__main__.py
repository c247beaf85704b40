import sys

from deepgami.cli import main

sys.exit(main())
