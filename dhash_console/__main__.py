from dhash_console.cli import main

raise SystemExit(main())
