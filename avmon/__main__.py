from avmon.cli import main

raise SystemExit(main())
