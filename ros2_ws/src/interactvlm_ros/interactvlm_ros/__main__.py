"""``python -m interactvlm_ros`` is the ``interactvlm`` command."""

import sys

from interactvlm_ros.cli.main import main

sys.exit(main())
