import sys

from proxyds.cli import main

sys.exit(main())
