// ScaleSeed: writes a large messenger database straight into SQLite for
// `scripts/bench --scale`. `ScaleSeed --help`.
ScaleSeedCommand.main()
