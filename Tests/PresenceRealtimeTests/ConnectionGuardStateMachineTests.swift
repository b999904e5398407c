import NIOCore
import PresenceRealtime
import Testing

/// The connection guard's rules, driven by hand: bytes, request and response events, and a clock that only moves
/// when a test moves it.
@Suite("Connection guard state machine")
struct ConnectionGuardStateMachineTests {
    typealias Machine = ConnectionGuardStateMachine

    /// The defaults, spelt out: 10 s head, 60 s idle, 10 s body windows at 1 KiB/s, 8 KiB request line.
    static let settings: ConnectionSettings = {
        var settings = ConnectionSettings()
        settings.headerTimeout = .seconds(10)
        settings.idleTimeout = .seconds(60)
        settings.bodyTimeout = .seconds(10)
        settings.bodyMinRate = 1024
        settings.maxRequestLineBytes = 8 * 1024
        return settings
    }()

    /// When the connection opens.
    static let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    static func at(_ seconds: Int64, milliseconds: Int64 = 0) -> NIODeadline {
        start + .seconds(seconds) + .milliseconds(milliseconds)
    }

    static func bytes(_ text: String) -> ByteBufferView {
        ByteBuffer(string: text).readableBytesView
    }

    static func bytes(count: Int, of byte: UInt8 = UInt8(ascii: "a")) -> ByteBufferView {
        ByteBuffer(bytes: [UInt8](repeating: byte, count: count)).readableBytesView
    }

    /// A machine for a direct client's connection, opened at ``start``.
    static func opened(refusal: ConnectionRegistry.Refusal? = nil, trustedProxy: Bool = false) -> Machine {
        var machine = Machine(settings: settings)
        #expect(machine.opened(peerIsTrustedProxy: trustedProxy, refusal: refusal, now: start) == .scheduleTimer(at: at(10)))
        return machine
    }

    /// A machine whose first request's head is complete at 1 s: reading its body.
    static func readingBody() -> Machine {
        var machine = opened()
        _ = machine.received(bytes("POST /x HTTP/1.1\r\nContent-Length: 100000\r\n\r\n"), now: at(1))
        #expect(machine.headReceived(now: at(1)) == .scheduleTimer(at: at(11)))
        return machine
    }

    /// A machine whose first request was answered at 2 s: idle, keep-alive.
    static func idle() -> Machine {
        var machine = readingBody()
        #expect(machine.requestEnded(responseFinished: false, now: at(2)) == .cancelTimer)
        #expect(machine.responseEnded(allAnswered: true, now: at(2)) == .scheduleTimer(at: at(62)))
        return machine
    }

    // MARK: - A new connection

    @Test func aNewConnectionMustStartItsFirstRequestWithinTheHeaderTimeout() {
        var machine = Self.opened()
        #expect(machine.timerDeadline == Self.at(10))
        #expect(machine.timerFired(now: Self.at(10)) == .close(timedOut: .noRequest))
        #expect(machine.phase == .closing)
        #expect(machine.timerDeadline == nil)
    }

    @Test func aTimerFiringBeforeItsDeadlineOrWithNoneArmedIsIgnored() {
        var machine = Self.opened()
        #expect(machine.timerFired(now: Self.at(9, milliseconds: 999)) == .none)
        #expect(machine.phase == .awaitingRequest(firstEver: true))
        _ = machine.closed()
        #expect(machine.timerFired(now: Self.at(30)) == .none)
    }

    @Test func closingTheConnectionCancelsItsTimer() {
        var machine = Self.opened()
        #expect(machine.closed() == .cancelTimer)
        #expect(machine.timerDeadline == nil)
    }

    // MARK: - Request heads

    @Test func theFirstBytesOfARequestStartItsHeadDeadline() {
        var machine = Self.opened()
        #expect(machine.received(Self.bytes("GE"), now: Self.at(3)) == .forwardAndScheduleTimer(at: Self.at(13)))
        #expect(machine.phase == .head)
        #expect(machine.firstByte == UInt8(ascii: "G"))
        #expect(!machine.requestLineComplete)
    }

    @Test func aHeadTricklingInDoesNotPushItsDeadlineBack() {
        var machine = Self.opened()
        _ = machine.received(Self.bytes("G"), now: Self.at(1))
        for second in 2...10 {
            #expect(machine.received(Self.bytes("E"), now: Self.at(Int64(second))) == .forward)
        }
        #expect(machine.timerDeadline == Self.at(11))
    }

    @Test func aHeadNotCompleteWithinTheHeaderTimeoutIsRefusedWith408() {
        var machine = Self.opened()
        _ = machine.received(Self.bytes("GET / HTTP/1.1\r\nHost: x\r\n"), now: Self.at(1))
        #expect(machine.timerFired(now: Self.at(11)) == .reject(.headerTimeout))
        #expect(machine.reject(responseDue: false, now: Self.at(11)) == .writeRejection(closeAt: Self.at(12)))
        #expect(machine.phase == .closing)
    }

    @Test func aRequestLineOverTheLimitInOneReadIsRefusedWith414() {
        var machine = Self.opened()
        let line = "GET /" + String(repeating: "a", count: 8 * 1024) + " HTTP/1.1\r\n"
        #expect(machine.received(Self.bytes(line), now: Self.at(1)) == .reject(.uriTooLong))
    }

    @Test func aRequestLineOverTheLimitWithNoLineEndYetIsRefusedWith414() {
        var machine = Self.opened()
        #expect(machine.received(Self.bytes(count: 8000), now: Self.at(1)) == .forwardAndScheduleTimer(at: Self.at(11)))
        #expect(machine.received(Self.bytes(count: 192), now: Self.at(1)) == .forward)
        #expect(machine.received(Self.bytes(count: 1), now: Self.at(1)) == .reject(.uriTooLong))
    }

    @Test func aRequestLineOfExactlyTheLimitIsAccepted() {
        var machine = Self.opened()
        _ = machine.received(Self.bytes(count: 8000), now: Self.at(1))
        #expect(machine.received(Self.bytes(count: 192), now: Self.at(1)) == .forward)
        #expect(machine.received(Self.bytes("\nHost: x\r\n"), now: Self.at(1)) == .forward)
        #expect(machine.requestLineComplete)
    }

    @Test func headerBytesAfterTheRequestLineAreLeftToTheDecodersLimit() {
        // 431 comes from the HTTP decoder (MAX_HEADER_BYTES); the machine only says the request line was complete,
        // which tells 431 from 414.
        var machine = Self.opened()
        _ = machine.received(Self.bytes("GET / HTTP/1.1\r\n"), now: Self.at(1))
        #expect(machine.received(Self.bytes(count: 64 * 1024), now: Self.at(1)) == .forward)
        #expect(machine.requestLineComplete)
    }

    @Test func aRequestLineEndingInABareLineFeedIsNoticed() {
        var crlf = Self.opened()
        _ = crlf.received(Self.bytes("GET / HTTP/1.1\r\n"), now: Self.at(1))
        #expect(!crlf.requestLineBareLF)

        var bare = Self.opened()
        _ = bare.received(Self.bytes("GET / HTTP/1.1\n"), now: Self.at(1))
        #expect(bare.requestLineBareLF)

        var splitCRLF = Self.opened()
        _ = splitCRLF.received(Self.bytes("GET / HTTP/1.1\r"), now: Self.at(1))
        _ = splitCRLF.received(Self.bytes("\nHost: x"), now: Self.at(1))
        #expect(!splitCRLF.requestLineBareLF)

        var splitBare = Self.opened()
        _ = splitBare.received(Self.bytes("GET / HTTP/1.1"), now: Self.at(1))
        _ = splitBare.received(Self.bytes("\nHost: x"), now: Self.at(1))
        #expect(splitBare.requestLineBareLF)
    }

    // MARK: - Bodies

    @Test func aCompleteHeadStartsTheBodysFirstWindow() {
        let machine = Self.readingBody()
        #expect(machine.phase == .body)
        #expect(machine.requestLineComplete)
        #expect(machine.timerDeadline == Self.at(11))
    }

    @Test func aBodySlowerThanTheMinimumRateWhileTheServerReadsFailsTheRequest() {
        var machine = Self.readingBody()
        machine.readRequested()
        #expect(machine.received(Self.bytes(count: 100), now: Self.at(5)) == .forward)
        machine.readRequested()
        #expect(machine.timerFired(now: Self.at(11)) == .failSlowBody)
        // The route answers 408 (RequestBodyTimeout); the connection is gone a second later whatever happens.
        #expect(machine.closeSoon(now: Self.at(11)) == .scheduleTimer(at: Self.at(12)))
        #expect(machine.phase == .closing)
        #expect(machine.received(Self.bytes(count: 10), now: Self.at(11)) == .drop)
        #expect(machine.timerFired(now: Self.at(12)) == .close(timedOut: nil))
    }

    @Test func aBodyAtTheMinimumRateGetsAnotherWindowAndEachWindowCountsAfresh() {
        var machine = Self.readingBody()
        machine.readRequested()
        _ = machine.received(Self.bytes(count: 10 * 1024), now: Self.at(6))
        machine.readRequested()
        #expect(machine.timerFired(now: Self.at(11)) == .scheduleTimer(at: Self.at(21)))
        _ = machine.received(Self.bytes(count: 10 * 1024 - 1), now: Self.at(15))
        machine.readRequested()
        #expect(machine.timerFired(now: Self.at(21)) == .failSlowBody)
    }

    @Test func aBodyTheServerIsNotReadingIsNotTimedOut() {
        // Back-pressure: with no read asked for, a slow body is the server's doing, not the client's.
        var machine = Self.readingBody()
        machine.readRequested()
        _ = machine.received(Self.bytes(count: 10), now: Self.at(2))
        #expect(machine.timerFired(now: Self.at(11)) == .scheduleTimer(at: Self.at(21)))
        #expect(machine.phase == .body)
    }

    // MARK: - Responses and keep-alive

    @Test func aResponseInFlightIsNotCut() {
        var machine = Self.readingBody()
        #expect(machine.requestEnded(responseFinished: false, now: Self.at(2)) == .cancelTimer)
        #expect(machine.phase == .responding)
        #expect(machine.timerDeadline == nil)
        // However long the response takes: no deadline, a stop lets it finish, a pipelined request's bytes pass.
        #expect(machine.timerFired(now: Self.at(3600)) == .none)
        #expect(machine.quiesce() == .forward)
        #expect(machine.received(Self.bytes("GET / HTTP/1.1\r\n\r\n"), now: Self.at(3600)) == .forward)
        #expect(machine.phase == .responding)
        // Only once every request read so far is answered does the idle deadline start.
        #expect(machine.responseEnded(allAnswered: false, now: Self.at(3601)) == .none)
        #expect(machine.responseEnded(allAnswered: true, now: Self.at(3602)) == .scheduleTimer(at: Self.at(3662)))
    }

    @Test func aRequestAnsweredBeforeItsEndArrivedWaitsForTheNextRequest() {
        var machine = Self.readingBody()
        #expect(machine.requestEnded(responseFinished: true, now: Self.at(3)) == .scheduleTimer(at: Self.at(63)))
        #expect(machine.phase == .awaitingRequest(firstEver: false))
    }

    @Test func anIdleKeepAliveConnectionIsClosedAfterTheIdleTimeout() {
        var machine = Self.idle()
        #expect(machine.phase == .awaitingRequest(firstEver: false))
        #expect(machine.timerFired(now: Self.at(61)) == .none)
        #expect(machine.timerFired(now: Self.at(62)) == .close(timedOut: .idle))
    }

    @Test func theNextRequestOnAKeepAliveConnectionStartsAFreshHead() {
        var machine = Self.idle()
        #expect(machine.received(Self.bytes("PUT /y"), now: Self.at(30)) == .forwardAndScheduleTimer(at: Self.at(40)))
        #expect(machine.phase == .head)
        #expect(!machine.requestLineComplete)
        #expect(machine.firstByte == UInt8(ascii: "P"))
        #expect(machine.timerFired(now: Self.at(40)) == .reject(.headerTimeout))
    }

    // MARK: - WebSockets

    @Test func anUpgradedConnectionHasNoDeadlinesOfTheGuard() {
        var machine = Self.readingBody()
        #expect(machine.upgraded() == .cancelTimer)
        #expect(machine.phase == .upgraded)
        #expect(machine.received(Self.bytes(count: 100), now: Self.at(100)) == .forward)
        #expect(machine.headReceived(now: Self.at(100)) == .none)
        #expect(machine.requestEnded(responseFinished: true, now: Self.at(100)) == .none)
        #expect(machine.timerFired(now: Self.at(1000)) == .none)
        #expect(machine.reject(responseDue: false, now: Self.at(1000)) == .none)
        #expect(machine.quiesce() == .forward)
        #expect(machine.phase == .upgraded)
    }

    // MARK: - Connection limits

    @Test func aConnectionOverALimitAtAcceptIsRefusedAtItsFirstRequest() {
        let machine = Self.opened(refusal: .maxConnections)
        #expect(machine.refusal == .maxConnections)
        #expect(!machine.needsAttribution)
    }

    @Test func aDirectClientsConnectionIsCountedAtAccept() {
        let machine = Self.opened()
        #expect(machine.refusal == nil)
        #expect(!machine.needsAttribution)
    }

    @Test func aTrustedProxysConnectionIsCountedOnceUnderTheClientItsFirstHeadNames() {
        var admitted = Self.opened(trustedProxy: true)
        #expect(admitted.needsAttribution)
        admitted.attributed(refusal: nil)
        #expect(!admitted.needsAttribution)
        #expect(admitted.refusal == nil)

        var refused = Self.opened(trustedProxy: true)
        refused.attributed(refusal: .perAddress)
        #expect(refused.refusal == .perAddress)
        #expect(!refused.needsAttribution)

        let overTheWorkersLimit = Self.opened(refusal: .maxConnections, trustedProxy: true)
        #expect(!overTheWorkersLimit.needsAttribution)
    }

    // MARK: - Refusals

    @Test func aRefusalWritesItsAnswerLingersAndClosesWhenTheClientDoes() {
        var machine = Self.opened(refusal: .perAddress)
        _ = machine.received(Self.bytes("GET / HTTP/1.1\r\n\r\n"), now: Self.at(1))
        #expect(machine.reject(responseDue: false, now: Self.at(1)) == .writeRejection(closeAt: Self.at(2)))
        #expect(machine.rejectionWritten(succeeded: true) == .linger)
        #expect(machine.lingering)
        // Input is drained; the HTTP handlers' close waits; a half close does not.
        #expect(machine.received(Self.bytes("more"), now: Self.at(1)) == .drop)
        #expect(machine.closeRequested(all: true) == .deferClose)
        #expect(machine.closeRequested(all: false) == .forward)
        #expect(machine.inputClosed() == .close(timedOut: nil))
        #expect(!machine.lingering)
        #expect(machine.closeRequested(all: true) == .forward)
    }

    @Test func aLingeringClientThatNeverClosesIsGoneAfterTheGrace() {
        var machine = Self.opened()
        _ = machine.received(Self.bytes("GET / HTTP/1.1\r\n"), now: Self.at(1))
        _ = machine.reject(responseDue: false, now: Self.at(1))
        _ = machine.rejectionWritten(succeeded: true)
        #expect(machine.timerFired(now: Self.at(2)) == .close(timedOut: nil))
        #expect(!machine.lingering)
    }

    @Test func aRefusalWhoseAnswerCouldNotBeWrittenClosesAtOnce() {
        var machine = Self.opened()
        _ = machine.reject(responseDue: false, now: Self.at(1))
        #expect(machine.rejectionWritten(succeeded: false) == .close(timedOut: nil))
        #expect(!machine.lingering)
    }

    @Test func aRefusalWhileAResponseIsDueWritesNothingAndCloses() {
        var machine = Self.readingBody()
        #expect(machine.reject(responseDue: true, now: Self.at(2)) == .close(timedOut: nil))
        #expect(machine.phase == .closing)
        #expect(machine.timerDeadline == nil)
    }

    @Test func aConnectionIsRefusedOnlyOnce() {
        var machine = Self.opened()
        _ = machine.reject(responseDue: false, now: Self.at(1))
        #expect(machine.reject(responseDue: false, now: Self.at(1)) == .none)
        #expect(machine.headReceived(now: Self.at(1)) == .none)
        #expect(machine.phase == .closing)
    }

    @Test func inputClosingBeforeAnyRefusalIsPassedOn() {
        var machine = Self.readingBody()
        #expect(machine.inputClosed() == .forward)
        #expect(machine.phase == .body)
    }

    // MARK: - Stopping

    @Test func aStopClosesConnectionsWithNoRequestOrOnlyPartOfAHead() {
        var fresh = Self.opened()
        #expect(fresh.quiesce() == .close(timedOut: nil))
        #expect(fresh.phase == .closing)

        var idle = Self.idle()
        #expect(idle.quiesce() == .close(timedOut: nil))

        var partialHead = Self.opened()
        _ = partialHead.received(Self.bytes("GET /slow"), now: Self.at(1))
        #expect(partialHead.quiesce() == .close(timedOut: nil))
    }

    @Test func aStopLetsARequestUnderWayFinish() {
        var machine = Self.readingBody()
        #expect(machine.quiesce() == .forward)
        #expect(machine.phase == .body)
        #expect(machine.timerDeadline == Self.at(11))
    }
}
