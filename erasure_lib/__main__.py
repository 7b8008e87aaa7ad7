from erasure_lib.cli import main

raise SystemExit(main())
