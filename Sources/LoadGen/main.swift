// LoadGen: the load generator behind scripts/bench. `LoadGen --help`, `LoadGen <scenario> --help`.
LoadGenCommand.main()
