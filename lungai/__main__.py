from lungai.cli import main

raise SystemExit(main())
