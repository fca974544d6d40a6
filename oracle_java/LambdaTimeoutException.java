/*
 * LambdaTimeoutException: the client stopped waiting: the connection was not established
 * within the connect timeout, or no answer arrived within the read timeout.
 *
 * Owns: saying which timeout fired and how long it was.
 * Must not: be retried automatically after a read timeout: Lambda may still be running the
 * function, and a second call would run it twice. (A connect timeout is retried, because the
 * request never left.) To wait longer, raise the read timeout with LambdaInvoke.configure_timeouts.
 *
 * Load order: 6 (needs LambdaException).
 */
package sqlambda;

public class LambdaTimeoutException extends LambdaException {

    private static final long serialVersionUID = 1L;

    private final String phase;
    private final int timeoutMillis;

    public LambdaTimeoutException(String functionName, String phase, int timeoutMillis, int attempts,
                                  Throwable cause) {
        super("timeout", functionName, 0, "ClientTimeout",
                "connect".equals(phase)
                        ? "no connection within " + timeoutMillis + " ms (connect timeout); the request was not sent"
                        : "no response within " + timeoutMillis + " ms (read timeout); the function may still be running",
                attempts, cause);
        this.phase = phase;
        this.timeoutMillis = timeoutMillis;
    }

    /** "connect" or "read". */
    public String getPhase() {
        return phase;
    }

    public int getTimeoutMillis() {
        return timeoutMillis;
    }
}
