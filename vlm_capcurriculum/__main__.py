import sys

from vlm_capcurriculum.cli import main

sys.exit(main())
