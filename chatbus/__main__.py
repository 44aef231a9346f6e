from chatbus.cli import main

raise SystemExit(main())
