"""``python -m modelregistry.cli``: the same as the ``modelregistry`` command."""

from modelregistry.cli import main

raise SystemExit(main())
