"""``python -m vlm_capcurriculum.integrations.easyr1 config=FILE.yaml key=value ... [--dry-run]``."""

from vlm_capcurriculum.integrations.easyr1.main import main

raise SystemExit(main())
