import Foundation

/// Runs one scenario with parsed options to the end of the process: the open-files check,
/// the overall time budget, the scenario, and its JSON line on stdout.
enum LoadRun {
    static func run(_ options: Options) -> Never {
        signal(SIGPIPE, SIG_IGN)
        let fileLimit = ProcessResources.raiseOpenFilesLimit()
        guard options.connectionCount + 256 <= fileLimit else {
            say("error: \(options.connectionCount) connections need more open files than the limit of \(fileLimit) (raise ulimit -n)")
            exit(69)  // EX_UNAVAILABLE
        }

        if options.scenario == .wsFloor, let socket = options.socket {
            do {
                try FloorServer.run(socketPath: socket, threads: options.threads, broadcast: options.copiesTo == .all)
            } catch {
                say("error: ws-floor: \(error)")
                exit(1)
            }
        }

        // Whatever happens, the generator stops by itself: setup gets a budget that grows with
        // the connection count, the load its own duration.
        let budget = 120 + Double(options.connectionCount) / 50 + options.warmup + options.duration + options.hold + 30
        DispatchQueue.global().asyncAfter(deadline: .now() + budget) {
            say("error: still running after \(Int(budget)) s; giving up")
            exit(2)
        }

        do {
            let load = try LoadContext(options: options)
            let report: Report
            switch options.scenario {
            case .wsIngest: report = try IngestScenario.run(load)
            case .wsFanout: report = try FanoutScenario.run(load)
            case .wsIdle: report = try IdleScenario.run(load)
            case .restWrite: report = try RestWriteScenario.run(load)
            case .wsResume: report = try ResumeScenario.run(load, events: options.events, rounds: options.rounds)
            case .wsReactions: report = try ReactionScenario.run(load)
            case .restChatList: report = try ChatListScenario.run(load)
            case .wsPresence: report = try PresenceScenario.run(load)
            case .wsRead: report = try ReadScenario.run(load)
            case .wsFloor: preconditionFailure("ws-floor runs above")
            }
            FileHandle.standardOutput.write(Data((report.line + "\n").utf8))
            load.shutdown()
            exit(0)
        } catch {
            say("error: \(error)")
            exit(1)
        }
    }
}
