import sys

from clinassay.cli import main

sys.exit(main())
