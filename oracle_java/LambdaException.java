/*
 * LambdaException: every failure of a Lambda call made from the database, as one checked
 * exception with a machine-readable kind.
 *
 * Owns: what a failed call reports to SQL. Inside Oracle an uncaught Java exception surfaces as
 * "ORA-29532: Java call terminated by uncaught Java exception: sqlambda.LambdaException: <message>",
 * so getMessage() is written to be read there: it names the function and the cause.
 * Must not: carry credentials. Messages are built from Lambda's answer and from our own text
 * only, and the client passes them through AwsCredentials.redact() before throwing.
 *
 * Kinds (getKind()):
 *   function_error  Lambda ran the function and it failed (X-Amz-Function-Error); see
 *                   LambdaFunctionException for errorType / errorMessage.
 *   timeout         the client gave up waiting (connect or read timeout); see LambdaTimeoutException.
 *   throttled       HTTP 429 after every retry was used.
 *   service_error   HTTP 5xx after every retry was used.
 *   connection      the connection failed (refused, reset, closed) after every retry was used.
 *   http            any other non-2xx answer (e.g. 404 function not found, 403 access denied,
 *                   413 payload too large); errorType is AWS's error code.
 *   credentials     no usable credentials were found.
 *   config          the client is not configured (no region, bad endpoint, bad argument).
 *
 * Load order: 4 (no dependencies).
 */
package sqlambda;

public class LambdaException extends Exception {

    private static final long serialVersionUID = 1L;

    private final String kind;
    private final String functionName;
    private final int statusCode;
    private final String errorType;
    private final String errorMessage;
    private final int attempts;

    public LambdaException(String kind, String functionName, int statusCode, String errorType,
                           String errorMessage, int attempts, Throwable cause) {
        super(describe(functionName, errorType, errorMessage), cause);
        this.kind = kind;
        this.functionName = functionName;
        this.statusCode = statusCode;
        this.errorType = errorType;
        this.errorMessage = errorMessage;
        this.attempts = attempts;
    }

    public LambdaException(String kind, String functionName, String message) {
        this(kind, functionName, 0, null, message, 0, null);
    }

    private static String describe(String functionName, String errorType, String errorMessage) {
        StringBuilder sb = new StringBuilder();
        if (functionName != null) {
            sb.append("Lambda ").append(functionName).append(": ");
        }
        if (errorType != null && !errorType.isEmpty()) {
            sb.append(errorType).append(": ");
        }
        sb.append(errorMessage == null ? "(no message)" : errorMessage);
        return sb.toString();
    }

    /** One of the kinds listed in the class comment. */
    public String getKind() {
        return kind;
    }

    /** The function called, or null when the failure came before a call. */
    public String getFunctionName() {
        return functionName;
    }

    /** The HTTP status of the last answer, or 0 when there was none. */
    public int getStatusCode() {
        return statusCode;
    }

    /** Lambda's errorType for function errors, AWS's error code for HTTP errors, else null. */
    public String getErrorType() {
        return errorType;
    }

    /** The error message without the function name prefix. */
    public String getErrorMessage() {
        return errorMessage;
    }

    /** How many HTTP attempts were made (1 + retries); 0 when none was. */
    public int getAttempts() {
        return attempts;
    }
}
