/*
 * LambdaInvoke: calls AWS Lambda's Invoke API from Oracle's embedded JVM with JDK classes only.
 *
 * Owns: the public static entry points that PL/SQL call specs name (invoke_sync, invoke_async,
 * their CLOB variants and the configure_* procedures), the HTTP exchange (HttpURLConnection,
 * connect/read timeouts, keep-alive), retries, and mapping Lambda's answers to results or to
 * LambdaException and its subclasses.
 * Must not: log or expose credentials (every server text is passed through
 * AwsCredentials.redact before it reaches an exception), parse or rewrite the caller's JSON
 * (bytes go through unchanged), or depend on any jar outside the JDK.
 *
 * Semantics (DESIGN.md):
 *   invoke_sync   InvocationType=RequestResponse. Returns the function's response payload.
 *                 A function error (X-Amz-Function-Error) throws LambdaFunctionException with
 *                 errorType and errorMessage; Lambda's own Timeout is one of those.
 *   invoke_async  InvocationType=Event. Returns 202 once Lambda queued the event. The event is
 *                 not withdrawn if the calling transaction later rolls back.
 *   invoke_sync_original (and its CLOB variant)  invoke_sync for the original awslabs integration's
 *                 awslambda_fn: a function error throws java.lang.Exception whose message is the
 *                 error payload JSON, exactly as the original class did, because code written for it
 *                 reads that JSON out of SQLERRM (ORA-29532 ... java.lang.Exception: {...}).
 * Retries: HTTP 429, HTTP 5xx, connect timeouts and connection failures are retried up to
 * maxAttempts in total, sleeping a "full jitter" backoff: random(0, min(maxDelay, base * 2^n)).
 * A read timeout is not retried (the function may be running; see LambdaTimeoutException).
 * A connection that fails after the request was written is retried, so like the AWS SDKs a
 * sync call is at-least-once in that rare case: make functions idempotent.
 *
 * Configuration is per JVM (inside Oracle: per session). Each value comes from the first of:
 *   region         configure(region, ...) | AWS_REGION | AWS_DEFAULT_REGION
 *   endpoint URL   configure(..., endpointUrl) | AWS_ENDPOINT_URL_LAMBDA | AWS_ENDPOINT_URL
 *                  | https://lambda.<region>.amazonaws.com
 *   timeouts (ms)  configure_timeouts | 5000 connect / 60000 read
 *   retries        configure_retries | 4 attempts, 100 ms base delay, 5000 ms cap
 *   credentials    see CredentialChain (configure_credentials_provider sets step 1)
 * A null or empty argument to a configure_* method means "not set here": fall back to the
 * next source. A value <= 0 for a number means the same.
 * Never from Java system properties: any Oracle session may set those for itself
 * (DBMS_JAVA.SET_PROPERTY) before calling a definer's-rights wrapper, so a property could redirect
 * the definer's signed requests. The configure_* calls come from the runtime package, whose
 * values are the spec's; the environment is the database server process's, set by the DBA. For
 * the same reason connections never go through a proxy (http.proxyHost, https.proxyHost and
 * socksProxyHost are system properties too).
 *
 * Load order: 9, last (needs every other class).
 */
package sqlambda;

import java.io.IOException;
import java.io.OutputStream;
import java.net.ConnectException;
import java.net.HttpURLConnection;
import java.net.NoRouteToHostException;
import java.net.Proxy;
import java.net.SocketTimeoutException;
import java.net.URL;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;
import java.sql.Clob;
import java.sql.SQLException;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import java.util.regex.Pattern;
import javax.net.ssl.SSLException;

public final class LambdaInvoke {

    public static final String USER_AGENT = "sqlambda-oracle-java/0.1";

    static final int DEFAULT_CONNECT_TIMEOUT_MS = 5000;
    static final int DEFAULT_READ_TIMEOUT_MS = 60000;
    static final int DEFAULT_MAX_ATTEMPTS = 4;
    static final int DEFAULT_RETRY_BASE_DELAY_MS = 100;
    static final int DEFAULT_RETRY_MAX_DELAY_MS = 5000;

    /** AWS's documented pattern for FunctionName: name, partial or full ARN, optional qualifier. */
    private static final Pattern FUNCTION_NAME = Pattern.compile(
            "^(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:)?"
                    + "(\\d{12}:)?(function:)?([a-zA-Z0-9-_\\.]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?$");

    private static final CredentialChain CREDENTIALS = new CredentialChain();

    // Explicit configuration; null / 0 means "fall back to properties and defaults".
    private static volatile String region;
    private static volatile String endpointUrl;
    // true once configure() ran in this JVM (false again after reset or a fresh Java session)
    private static volatile boolean configured;
    private static volatile int connectTimeoutMs;
    private static volatile int readTimeoutMs;
    private static volatile int maxAttempts;
    private static volatile int retryBaseDelayMs;
    private static volatile int retryMaxDelayMs;
    private static volatile ClobFactory clobFactory = new ClobFactory.DefaultConnection();

    private LambdaInvoke() {
    }

    // == configuration (PL/SQL call specs) ================================================

    /**
     * Sets region and endpoint URL. Call spec:
     * PROCEDURE configure(region VARCHAR2, endpoint_url VARCHAR2)
     * AS LANGUAGE JAVA NAME 'sqlambda.LambdaInvoke.configure(java.lang.String, java.lang.String)';
     */
    public static void configure(String region, String endpointUrl) throws LambdaException {
        String r = blankToNull(region);
        String e = blankToNull(endpointUrl);
        if (e != null) {
            e = checkEndpoint(e);
        }
        LambdaInvoke.region = r;
        LambdaInvoke.endpointUrl = e;
        configured = true;
    }

    /**
     * Sets the connect and read timeouts in milliseconds. Call spec:
     * PROCEDURE configure_timeouts(connect_ms NUMBER, read_ms NUMBER)
     * AS LANGUAGE JAVA NAME 'sqlambda.LambdaInvoke.configure_timeouts(int, int)';
     */
    public static void configure_timeouts(int connectMs, int readMs) {
        connectTimeoutMs = Math.max(0, connectMs);
        readTimeoutMs = Math.max(0, readMs);
    }

    /**
     * Sets retry behaviour: total attempts (1 = no retry) and the backoff base and cap in ms.
     * Call spec: PROCEDURE configure_retries(max_attempts NUMBER, base_delay_ms NUMBER, max_delay_ms NUMBER)
     * AS LANGUAGE JAVA NAME 'sqlambda.LambdaInvoke.configure_retries(int, int, int)';
     */
    public static void configure_retries(int maxAttempts, int baseDelayMs, int maxDelayMs) {
        LambdaInvoke.maxAttempts = Math.max(0, maxAttempts);
        retryBaseDelayMs = Math.max(0, baseDelayMs);
        retryMaxDelayMs = Math.max(0, maxDelayMs);
    }

    /**
     * Names the class (public, no-argument constructor, implements AwsCredentials.Provider) that
     * supplies credentials first; null or '' removes it. Call spec:
     * PROCEDURE configure_credentials_provider(class_name VARCHAR2)
     * AS LANGUAGE JAVA NAME 'sqlambda.LambdaInvoke.configure_credentials_provider(java.lang.String)';
     */
    public static void configure_credentials_provider(String className) throws LambdaException {
        String name = blankToNull(className);
        if (name == null) {
            setCredentialsProvider(null);
            return;
        }
        Object instance;
        try {
            instance = Class.forName(name.trim()).getConstructor().newInstance();
        } catch (Exception e) {
            throw new LambdaException("config", null, 0, "ConfigError",
                    "cannot instantiate credentials provider class " + name + " ("
                            + e.getClass().getSimpleName() + "); it needs a public no-argument constructor",
                    0, null);
        }
        if (!(instance instanceof AwsCredentials.Provider)) {
            throw new LambdaException("config", null, 0, "ConfigError",
                    "class " + name + " does not implement sqlambda.AwsCredentials.Provider", 0, null);
        }
        setCredentialsProvider((AwsCredentials.Provider) instance);
    }

    /**
     * Which credential steps may run (the spec's oracle.credentials: default, environment, imds,
     * provider), so the chain never tries a source the installer granted no permission for. Call spec:
     * PROCEDURE configure_credentials_source(source VARCHAR2)
     * AS LANGUAGE JAVA NAME 'sqlambda.LambdaInvoke.configure_credentials_source(java.lang.String)';
     */
    public static void configure_credentials_source(String source) throws LambdaException {
        CREDENTIALS.setSource(source);
        CREDENTIALS.clearCache();
    }

    /**
     * 1 when this JVM holds a configuration (configure was called since it started or was reset),
     * else 0: the runtime package asks before every call, so a Java session reset (ORA-29549 after an
     * upgrade replaced the classes, DBMS_JAVA.endsession) is followed by configuring again instead of
     * "no AWS region" until the session ends. Call spec:
     * FUNCTION is_configured RETURN NUMBER AS LANGUAGE JAVA NAME 'sqlambda.LambdaInvoke.is_configured() return int';
     */
    public static int is_configured() {
        return configured ? 1 : 0;
    }

    /**
     * For `sqlambda doctor`: where this session's credentials come from ("ok: environment",
     * "ok: imds:<role>", ...) or why there are none ("error: ..."); never a key. Call spec:
     * FUNCTION credentials_check RETURN VARCHAR2 AS LANGUAGE JAVA NAME 'sqlambda.LambdaInvoke.credentials_check() return java.lang.String';
     */
    public static String credentials_check() {
        try {
            return "ok: " + CREDENTIALS.resolve().getSource();
        } catch (LambdaException e) {
            return "error: " + e.getMessage();
        }
    }

    /**
     * For `sqlambda doctor`: opens a connection to the Lambda endpoint as a call would (for https,
     * the TLS handshake against the JVM's trust store: is the endpoint's CA trusted?) and sends
     * nothing. "ok: ..." or "error: ...". Call spec:
     * FUNCTION endpoint_check RETURN VARCHAR2 AS LANGUAGE JAVA NAME 'sqlambda.LambdaInvoke.endpoint_check() return java.lang.String';
     */
    public static String endpoint_check() {
        String url;
        try {
            url = resolveEndpoint(resolveRegion());
        } catch (LambdaException e) {
            return "error: " + e.getMessage();
        }
        HttpURLConnection conn = null;
        try {
            conn = (HttpURLConnection) new URL(url + "/").openConnection(Proxy.NO_PROXY);
            conn.setConnectTimeout(connectTimeoutMs > 0 ? connectTimeoutMs : DEFAULT_CONNECT_TIMEOUT_MS);
            conn.setReadTimeout(connectTimeoutMs > 0 ? connectTimeoutMs : DEFAULT_CONNECT_TIMEOUT_MS);
            conn.connect();
            return "ok: " + (url.startsWith("https:") ? "TLS handshake with " : "TCP connection to ") + hostOf(url)
                    + " succeeded";
        } catch (SSLException e) {
            return "error: TLS to " + hostOf(url) + " failed (" + e.getClass().getSimpleName()
                    + "): the endpoint's CA is not in the database JVM's trust store";
        } catch (SecurityException e) {
            return "error: " + CredentialChain.missingPermission(e, "connecting to " + hostOf(url)).getMessage();
        } catch (IOException e) {
            return "error: cannot connect to " + hostOf(url) + " (" + e.getClass().getSimpleName() + ")";
        } finally {
            if (conn != null) {
                conn.disconnect();
            }
        }
    }

    /** Java API for step 1 of the credential chain; null removes the provider. */
    public static void setCredentialsProvider(AwsCredentials.Provider provider) {
        CREDENTIALS.setProvider(provider);
        CREDENTIALS.clearCache();
    }

    /** Replaces where result CLOBs come from (tests on a plain JVM install a SerialClob factory). */
    public static void setClobFactory(ClobFactory factory) {
        clobFactory = factory == null ? new ClobFactory.DefaultConnection() : factory;
    }

    /** Forgets every explicit setting and cached credential (settings fall back to properties). */
    public static void reset() {
        configured = false;
        region = null;
        endpointUrl = null;
        connectTimeoutMs = 0;
        readTimeoutMs = 0;
        maxAttempts = 0;
        retryBaseDelayMs = 0;
        retryMaxDelayMs = 0;
        CREDENTIALS.setProvider(null);
        CREDENTIALS.clearCache();
        clobFactory = new ClobFactory.DefaultConnection();
    }

    // == invocation (PL/SQL call specs) ===================================================

    /**
     * Invokes fn synchronously and returns its response payload (JSON text).
     * Call spec: FUNCTION invoke_sync(fn VARCHAR2, payload VARCHAR2) RETURN VARCHAR2
     * AS LANGUAGE JAVA NAME 'sqlambda.LambdaInvoke.invoke_sync(java.lang.String, java.lang.String) return java.lang.String';
     *
     * @throws LambdaFunctionException the function failed (errorType, errorMessage)
     * @throws LambdaTimeoutException  no response within the read timeout
     * @throws LambdaException         anything else (see its kinds)
     */
    public static String invoke_sync(String fn, String payload) throws LambdaException {
        return new String(invoke(fn, utf8(payload), false).body, StandardCharsets.UTF_8);
    }

    /**
     * Queues an event for fn (InvocationType=Event) and returns the HTTP status, 202.
     * Call spec: FUNCTION invoke_async(fn VARCHAR2, payload VARCHAR2) RETURN NUMBER
     * AS LANGUAGE JAVA NAME 'sqlambda.LambdaInvoke.invoke_async(java.lang.String, java.lang.String) return int';
     */
    public static int invoke_async(String fn, String payload) throws LambdaException {
        return invoke(fn, utf8(payload), true).status;
    }

    /**
     * invoke_sync as the original awslabs LambdaInvoke.invoke_sync answered a function error: a
     * java.lang.Exception carrying the error payload JSON. Call spec:
     * FUNCTION invoke_sync_original(fn VARCHAR2, payload VARCHAR2) RETURN VARCHAR2
     * AS LANGUAGE JAVA NAME 'sqlambda.LambdaInvoke.invoke_sync_original(java.lang.String, java.lang.String) return java.lang.String';
     */
    public static String invoke_sync_original(String fn, String payload) throws Exception {
        try {
            return invoke_sync(fn, payload);
        } catch (LambdaFunctionException e) {
            throw new Exception(e.getPayload());
        }
    }

    /**
     * CLOB variant of invoke_sync_original. Call spec:
     * FUNCTION invoke_sync_clob_original(fn VARCHAR2, payload CLOB) RETURN CLOB
     * AS LANGUAGE JAVA NAME 'sqlambda.LambdaInvoke.invoke_sync_clob_original(java.lang.String, java.sql.Clob) return java.sql.Clob';
     */
    public static Clob invoke_sync_clob_original(String fn, Clob payload) throws Exception {
        try {
            return invoke_sync_clob(fn, payload);
        } catch (LambdaFunctionException e) {
            throw new Exception(e.getPayload());
        }
    }

    /**
     * CLOB variant of invoke_sync for payloads or results over the VARCHAR2 limit (32767 bytes
     * in PL/SQL). Call spec: FUNCTION invoke_sync_clob(fn VARCHAR2, payload CLOB) RETURN CLOB
     * AS LANGUAGE JAVA NAME 'sqlambda.LambdaInvoke.invoke_sync_clob(java.lang.String, java.sql.Clob) return java.sql.Clob';
     */
    public static Clob invoke_sync_clob(String fn, Clob payload) throws LambdaException, SQLException {
        String result = invoke_sync(fn, clobToString(payload));
        return clobFactory.createClob(result);
    }

    /**
     * CLOB variant of invoke_async. Call spec:
     * FUNCTION invoke_async_clob(fn VARCHAR2, payload CLOB) RETURN NUMBER
     * AS LANGUAGE JAVA NAME 'sqlambda.LambdaInvoke.invoke_async_clob(java.lang.String, java.sql.Clob) return int';
     */
    public static int invoke_async_clob(String fn, Clob payload) throws LambdaException, SQLException {
        return invoke_async(fn, clobToString(payload));
    }

    // == the HTTP exchange ================================================================

    /** What one successful call returned. */
    public static final class Result {
        public final int status;
        public final byte[] body;
        public final String requestId;
        public final int attempts;

        Result(int status, byte[] body, String requestId, int attempts) {
            this.status = status;
            this.body = body;
            this.requestId = requestId;
            this.attempts = attempts;
        }
    }

    /** Java API: one Invoke call with retries. async selects InvocationType=Event. */
    public static Result invoke(String fn, byte[] payload, boolean async) throws LambdaException {
        String name = blankToNull(fn);
        if (name == null || name.length() > 170 || !FUNCTION_NAME.matcher(name).matches()) {
            throw new LambdaException("config", fn, 0, "InvalidFunctionName",
                    "not a valid Lambda function name or ARN (letters, digits, '-', '_', "
                            + "optionally an ARN and a ':qualifier')", 0, null);
        }
        String reg = resolveRegion();
        String url = resolveEndpoint(reg) + "/2015-03-31/functions/" + SigV4.encode(name, false) + "/invocations";
        byte[] body = payload == null ? new byte[0] : payload;
        int attemptsAllowed = positiveOr(maxAttempts, DEFAULT_MAX_ATTEMPTS);
        int connectMs = positiveOr(connectTimeoutMs, DEFAULT_CONNECT_TIMEOUT_MS);
        int readMs = positiveOr(readTimeoutMs, DEFAULT_READ_TIMEOUT_MS);
        int baseDelay = positiveOr(retryBaseDelayMs, DEFAULT_RETRY_BASE_DELAY_MS);
        int maxDelay = positiveOr(retryMaxDelayMs, DEFAULT_RETRY_MAX_DELAY_MS);

        Map<String, String> headers = new LinkedHashMap<String, String>();
        headers.put("Content-Type", "application/json");
        headers.put("X-Amz-Invocation-Type", async ? "Event" : "RequestResponse");

        LambdaException last = null;
        for (int attempt = 1; attempt <= attemptsAllowed; attempt++) {
            if (attempt > 1) {
                backoff(attempt - 1, baseDelay, maxDelay, name);
            }
            AwsCredentials creds = CREDENTIALS.resolve();
            Map<String, String> signed = SigV4.sign("POST", url, headers, body, creds, reg, "lambda",
                    System.currentTimeMillis());
            HttpURLConnection conn;
            try {
                conn = (HttpURLConnection) new URL(url).openConnection(Proxy.NO_PROXY);
            } catch (IOException e) {
                throw new LambdaException("config", name, 0, "ConfigError", "bad endpoint URL", attempt, null);
            }
            boolean sent = false;
            try {
                conn.setRequestMethod("POST");
                conn.setConnectTimeout(connectMs);
                conn.setReadTimeout(readMs);
                conn.setUseCaches(false);
                conn.setInstanceFollowRedirects(false);
                conn.setDoOutput(true);
                // No setFixedLengthStreamingMode: for a streamed POST the JDK probes a reused keep-alive
                // connection with a 1 ms read timeout before every request (HttpClient.available), which
                // cost about 1 ms per call; a buffered body (at most Lambda's 6 MB) skips that probe.
                conn.setRequestProperty("User-Agent", USER_AGENT);
                for (Map.Entry<String, String> h : signed.entrySet()) {
                    conn.setRequestProperty(h.getKey(), h.getValue());
                }
                try {
                    conn.connect();
                } catch (SocketTimeoutException e) {
                    last = new LambdaTimeoutException(name, "connect", connectMs, attempt, null);
                    continue; // nothing was sent: safe to retry
                }
                sent = true;
                OutputStream out = conn.getOutputStream();
                out.write(body);
                out.close();
                int status = conn.getResponseCode();
                byte[] response = CredentialChain.readAll(status >= 400 ? conn.getErrorStream() : conn.getInputStream());
                String requestId = conn.getHeaderField("x-amzn-RequestId");
                if (status >= 200 && status < 300) {
                    String functionError = conn.getHeaderField("X-Amz-Function-Error");
                    if (functionError != null && !functionError.isEmpty()) {
                        throw functionError(name, functionError, response, creds, attempt);
                    }
                    return new Result(status, response, requestId, attempt);
                }
                last = httpError(name, status, conn.getHeaderField("x-amzn-ErrorType"), response, creds, attempt);
                if (status == 429 || status >= 500) {
                    continue;
                }
                throw last;
            } catch (SocketTimeoutException e) {
                // The request went out and no answer came in time: Lambda may be running it.
                throw new LambdaTimeoutException(name, "read", readMs, attempt, null);
            } catch (SSLException e) {
                // Not retried: a missing CA or a TLS policy problem will not fix itself.
                throw new LambdaException("connection", name, 0, "TlsError",
                        "TLS failed (" + e.getClass().getSimpleName() + "): is the Amazon root CA in the "
                                + "JVM trust store? See oracle_java/README.md", attempt, null);
            } catch (UnknownHostException e) {
                throw new LambdaException("connection", name, 0, "UnknownHost",
                        "cannot resolve the endpoint host " + hostOf(url), attempt, null);
            } catch (SecurityException e) {
                // Oracle's JVM: the schema lacks the SocketPermission for this endpoint
                throw CredentialChain.missingPermission(e, "connecting to " + hostOf(url));
            } catch (IOException e) {
                String what = (e instanceof ConnectException || e instanceof NoRouteToHostException)
                        ? "connection refused or unreachable" : sent ? "connection failed during the call"
                        : "connection failed";
                last = new LambdaException("connection", name, 0, "ConnectionError",
                        what + " (" + e.getClass().getSimpleName() + ") to " + hostOf(url), attempt, null);
            }
        }
        throw last;
    }

    private static LambdaFunctionException functionError(String fn, String functionError, byte[] response,
                                                         AwsCredentials creds, int attempt) {
        String payload = new String(response, StandardCharsets.UTF_8);
        Map<String, Object> obj = Json.parseObjectOrNull(payload);
        String type = Json.stringField(obj, "errorType");
        String message = Json.stringField(obj, "errorMessage");
        if (message == null) {
            message = obj == null ? payload : "(the function error has no errorMessage)";
        }
        if (type == null) {
            type = functionError; // e.g. timeouts report only errorMessage
        }
        return new LambdaFunctionException(fn, functionError, creds.redact(type), creds.redact(clip(message)),
                creds.redact(payload), attempt);
    }

    private static LambdaException httpError(String fn, int status, String errorTypeHeader, byte[] response,
                                             AwsCredentials creds, int attempt) {
        String body = new String(response, StandardCharsets.UTF_8);
        Map<String, Object> obj = Json.parseObjectOrNull(body);
        String type = errorTypeHeader;
        if (type != null && type.indexOf(':') > 0) {
            type = type.substring(0, type.indexOf(':'));
        }
        if (type == null) {
            type = Json.stringField(obj, "__type");
        }
        if (type == null) {
            type = "HTTP" + status;
        }
        String message = Json.stringField(obj, "message");
        if (message == null) {
            message = Json.stringField(obj, "Message");
        }
        if (message == null) {
            message = body.isEmpty() ? "HTTP " + status : body;
        }
        String kind = status == 429 ? "throttled" : status >= 500 ? "service_error" : "http";
        return new LambdaException(kind, fn, status, creds.redact(type),
                creds.redact(clip(message)) + " (HTTP " + status + ")", attempt, null);
    }

    private static void backoff(int retry, int baseDelay, int maxDelay, String fn) throws LambdaException {
        long ceiling = Math.min((long) maxDelay, (long) baseDelay << Math.min(retry, 20));
        long sleep = ceiling <= 0 ? 0 : ThreadLocalRandom.current().nextLong(ceiling + 1);
        try {
            Thread.sleep(sleep);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new LambdaException("connection", fn, 0, "Interrupted", "interrupted while waiting to retry", retry, null);
        }
    }

    // == helpers ==========================================================================

    static String resolveRegion() throws LambdaException {
        String r = region;
        if (r == null) {
            r = CredentialChain.env("AWS_REGION");
        }
        if (r == null) {
            r = CredentialChain.env("AWS_DEFAULT_REGION");
        }
        if (r == null) {
            throw new LambdaException("config", null, 0, "ConfigError",
                    "no AWS region: call sqlambda.LambdaInvoke.configure(region, endpoint_url) "
                            + "or set AWS_REGION in the database server's environment", 0, null);
        }
        return r.trim();
    }

    static String resolveEndpoint(String reg) throws LambdaException {
        String e = endpointUrl;
        if (e == null) {
            e = CredentialChain.env("AWS_ENDPOINT_URL_LAMBDA");
        }
        if (e == null) {
            e = CredentialChain.env("AWS_ENDPOINT_URL");
        }
        if (e == null) {
            return "https://lambda." + reg + ".amazonaws.com";
        }
        return checkEndpoint(e);
    }

    private static String checkEndpoint(String e) throws LambdaException {
        String t = e.trim();
        while (t.endsWith("/")) {
            t = t.substring(0, t.length() - 1);
        }
        String lower = t.toLowerCase(Locale.ROOT);
        if (!(lower.startsWith("https://") || lower.startsWith("http://")) || t.indexOf('?') >= 0
                || t.indexOf('#') >= 0 || t.length() <= "https://".length()) {
            throw new LambdaException("config", null, 0, "ConfigError",
                    "the endpoint URL must look like https://host[:port] (got '" + t + "')", 0, null);
        }
        return t;
    }

    private static int positiveOr(int explicit, int fallback) {
        return explicit > 0 ? explicit : fallback;
    }

    private static String clobToString(Clob clob) throws SQLException {
        if (clob == null) {
            return null;
        }
        long length = clob.length();
        if (length > Integer.MAX_VALUE) {
            throw new SQLException("CLOB payload of " + length + " characters is larger than Lambda accepts");
        }
        return length == 0 ? "" : clob.getSubString(1L, (int) length);
    }

    private static byte[] utf8(String s) {
        return s == null ? null : s.getBytes(StandardCharsets.UTF_8);
    }

    private static String blankToNull(String s) {
        return s == null || s.trim().isEmpty() ? null : s.trim();
    }

    private static String clip(String s) {
        return s.length() <= 2000 ? s : s.substring(0, 2000) + "...";
    }

    private static String hostOf(String url) {
        return SigV4.ParsedUrl.parse(url).hostHeader;
    }
}
