/*
 * LambdaFunctionException: the function ran and failed. Lambda answered 200 with an
 * X-Amz-Function-Error header ("Unhandled" or "Handled") and a payload like
 * {"errorType": "ValueError", "errorMessage": "...", "stackTrace": [...]}.
 *
 * Owns: carrying errorType, errorMessage and the raw error payload to the caller.
 * Must not: be retried. The function already ran; running it again is the caller's decision.
 * A function that runs past its configured Timeout also lands here (Lambda reports it as a
 * function error, "Task timed out after N seconds"), unlike LambdaTimeoutException, which is
 * the client giving up.
 *
 * Load order: 5 (needs LambdaException).
 */
package sqlambda;

public class LambdaFunctionException extends LambdaException {

    private static final long serialVersionUID = 1L;

    private final String functionError;
    private final String payload;

    public LambdaFunctionException(String functionName, String functionError, String errorType,
                                   String errorMessage, String payload, int attempts) {
        super("function_error", functionName, 200, errorType, errorMessage, attempts, null);
        this.functionError = functionError;
        this.payload = payload;
    }

    /** The X-Amz-Function-Error header value: "Unhandled" or "Handled". */
    public String getFunctionError() {
        return functionError;
    }

    /** The error payload exactly as Lambda returned it (JSON text). */
    public String getPayload() {
        return payload;
    }
}
