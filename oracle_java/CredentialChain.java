/*
 * CredentialChain: finds AWS credentials for the Lambda client, in a fixed order.
 *
 *   1. a provider the DBA configured (AwsCredentials.Provider, set by class name or in Java);
 *   2. the environment variables AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN
 *      of the database server process (source "default" or "environment");
 *   3. EC2 instance metadata, IMDSv2 only (source "default" or "imds"): PUT /latest/api/token, then
 *      GET /latest/meta-data/iam/security-credentials/ and .../<role> with the token header.
 *      Role credentials are cached and fetched again REFRESH_MARGIN before they expire; if that
 *      refresh fails while the cached ones are still valid, the cached ones are used.
 *
 * Owns: credential resolution and the IMDSv2 client.
 * Must not: log, print or put any credential in an exception message; error texts name the
 * source and the HTTP status only. It does not sign or send Lambda requests.
 *
 * The source (setSource, from the spec's oracle.credentials) limits the chain to the steps the
 * installer granted Java permissions for: "default" 1-2-3, "environment" 1-2, "imds" 1-3, "provider" 1.
 * A permission the security manager denies (Oracle's JVM always runs one) is never taken for "not
 * set": it ends the call with a LambdaException of kind "permission" naming the permission and
 * the DBMS_JAVA.GRANT_PERMISSION call that grants it.
 *
 * Settings (environment variables of the database server process):
 *   AWS_EC2_METADATA_SERVICE_ENDPOINT  default http://169.254.169.254
 *   AWS_EC2_METADATA_DISABLED          "true" skips step 3
 * Never Java system properties: any Oracle session can set them for itself
 * (DBMS_JAVA.SET_PROPERTY), so they could choose the credentials (or the metadata server) a
 * definer's-rights call signs with. IMDS is reached without any proxy for the same reason.
 *
 * Load order: 7 (needs AwsCredentials, Json, LambdaException).
 */
package sqlambda;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.Proxy;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.util.Map;

public final class CredentialChain {

    /** Role credentials are refreshed this long before their Expiration (AWS SDKs use 5 min). */
    public static final long REFRESH_MARGIN_MILLIS = 5 * 60 * 1000L;
    static final int IMDS_TOKEN_TTL_SECONDS = 21600;
    static final int IMDS_CONNECT_TIMEOUT_MS = 1000;
    static final int IMDS_READ_TIMEOUT_MS = 2000;

    private volatile AwsCredentials.Provider configured;
    private volatile String source = "default";

    // IMDS state, guarded by "this".
    private String imdsToken;
    private long imdsTokenExpiresAt;
    private AwsCredentials imdsCredentials;

    /** Sets (or with null clears) the DBA-configured provider, first in the chain. */
    public void setProvider(AwsCredentials.Provider provider) {
        this.configured = provider;
    }

    /** Which steps may run: "default", "environment", "imds" or "provider" (null or '': "default"). */
    public void setSource(String value) throws LambdaException {
        String v = AwsCredentials.isBlank(value) ? "default" : value.trim();
        if (!v.equals("default") && !v.equals("environment") && !v.equals("imds") && !v.equals("provider")) {
            throw new LambdaException("config", null, 0, "ConfigError",
                    "credentials source must be default, environment, imds or provider, not " + v, 0, null);
        }
        this.source = v;
    }

    /** The source in force. */
    public String getSource() {
        return source;
    }

    /** Forgets cached IMDS credentials and token (used when configuration changes). */
    public synchronized void clearCache() {
        imdsToken = null;
        imdsTokenExpiresAt = 0L;
        imdsCredentials = null;
    }

    /** Resolves credentials for one request; throws LambdaException kind "credentials". */
    public AwsCredentials resolve() throws LambdaException {
        AwsCredentials.Provider provider = configured;
        if (provider != null) {
            AwsCredentials c;
            try {
                c = provider.resolve();
            } catch (Exception e) {
                // The provider is DBA code; its class name is safe, its message is its own.
                throw new LambdaException("credentials", null, 0, "CredentialsError",
                        "the configured credentials provider " + provider.getClass().getName()
                                + " failed: " + e.getClass().getName(), 0, null);
            }
            if (c != null) {
                return c;
            }
        }
        String mode = source;
        if (mode.equals("provider")) {
            throw new LambdaException("credentials", null, 0, "CredentialsError",
                    provider == null ? "no AWS credentials: credentials: provider, but no provider class is configured"
                                     : "no AWS credentials: the configured provider returned none", 0, null);
        }
        if (mode.equals("default") || mode.equals("environment")) {
            AwsCredentials c = fromEnvironment();
            if (c != null) {
                return c;
            }
            if (mode.equals("environment")) {
                throw new LambdaException("credentials", null, 0, "CredentialsError",
                        "no AWS credentials in the database server's environment (AWS_ACCESS_KEY_ID and "
                                + "AWS_SECRET_ACCESS_KEY); credentials: environment reads nothing else", 0, null);
            }
        }
        if ("true".equalsIgnoreCase(env("AWS_EC2_METADATA_DISABLED"))) {
            throw new LambdaException("credentials", null, 0, "CredentialsError",
                    "no AWS credentials: no provider configured, none in the environment "
                            + "(AWS_ACCESS_KEY_ID), and instance metadata is disabled",
                    0, null);
        }
        return fromInstanceMetadata();
    }

    // -- step 2 ----------------------------------------------------------------------------

    static AwsCredentials fromEnvironment() throws LambdaException {
        return pair(env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"), env("AWS_SESSION_TOKEN"),
                "environment", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY");
    }

    private static AwsCredentials pair(String id, String secret, String token, String source,
                                       String idName, String secretName) throws LambdaException {
        boolean hasId = !AwsCredentials.isBlank(id);
        boolean hasSecret = !AwsCredentials.isBlank(secret);
        if (!hasId && !hasSecret) {
            return null;
        }
        if (hasId != hasSecret) {
            // Half a key pair is a configuration mistake; falling through would hide it.
            throw new LambdaException("credentials", null, 0, "CredentialsError",
                    (hasId ? idName + " is set but " + secretName : secretName + " is set but " + idName)
                            + " is not (" + source + ")", 0, null);
        }
        return new AwsCredentials(id, secret, token, 0L, source);
    }

    // -- step 3: IMDSv2 --------------------------------------------------------------------

    private synchronized AwsCredentials fromInstanceMetadata() throws LambdaException {
        long now = System.currentTimeMillis();
        AwsCredentials cached = imdsCredentials;
        if (cached != null && now < cached.getExpiresAtMillis() - REFRESH_MARGIN_MILLIS) {
            return cached;
        }
        try {
            imdsCredentials = fetchRoleCredentials();
            return imdsCredentials;
        } catch (LambdaException e) {
            if (cached != null && now < cached.getExpiresAtMillis()) {
                return cached; // refresh failed but the old ones still work: use them until they expire
            }
            throw e;
        }
    }

    private AwsCredentials fetchRoleCredentials() throws LambdaException {
        String roles = imdsGet("/latest/meta-data/iam/security-credentials/");
        String role = null;
        for (String line : roles.split("\n")) {
            if (!line.trim().isEmpty()) {
                role = line.trim();
                break;
            }
        }
        if (role == null) {
            throw imdsError("no IAM role is attached to this instance");
        }
        String doc = imdsGet("/latest/meta-data/iam/security-credentials/" + role);
        Map<String, Object> obj = Json.parseObjectOrNull(doc);
        if (obj == null) {
            throw imdsError("the role credentials document is not a JSON object");
        }
        String code = Json.stringField(obj, "Code");
        if (code != null && !"Success".equals(code)) {
            throw imdsError("instance metadata answered Code=" + code + " for role " + role);
        }
        String id = Json.stringField(obj, "AccessKeyId");
        String secret = Json.stringField(obj, "SecretAccessKey");
        String token = Json.stringField(obj, "Token");
        String expiration = Json.stringField(obj, "Expiration");
        if (AwsCredentials.isBlank(id) || AwsCredentials.isBlank(secret)) {
            throw imdsError("the role credentials document for role " + role + " has no key pair");
        }
        long expiresAt;
        try {
            expiresAt = parseInstant(expiration);
        } catch (RuntimeException e) {
            throw imdsError("the role credentials document has no valid Expiration");
        }
        return new AwsCredentials(id, secret, token, expiresAt, "imds:" + role);
    }

    static long parseInstant(String iso) {
        if (iso == null) {
            throw new IllegalArgumentException("missing");
        }
        try {
            return Instant.parse(iso).toEpochMilli();
        } catch (RuntimeException e) {
            return OffsetDateTime.parse(iso).toInstant().toEpochMilli();
        }
    }

    /** GET with the session token; a 401 means the token expired, so fetch one and try once more. */
    private String imdsGet(String path) throws LambdaException {
        for (int attempt = 0; attempt < 2; attempt++) {
            String token = imdsToken();
            Response r = imdsRequest("GET", path, "X-aws-ec2-metadata-token", token);
            if (r.status == 200) {
                return r.body;
            }
            if (r.status == 401) {
                imdsToken = null;
                continue;
            }
            throw imdsError("GET " + path + " answered HTTP " + r.status);
        }
        throw imdsError("GET " + path + " was refused (HTTP 401) even with a fresh token");
    }

    private String imdsToken() throws LambdaException {
        long now = System.currentTimeMillis();
        if (imdsToken != null && now < imdsTokenExpiresAt) {
            return imdsToken;
        }
        Response r = imdsRequest("PUT", "/latest/api/token", "X-aws-ec2-metadata-token-ttl-seconds",
                Integer.toString(IMDS_TOKEN_TTL_SECONDS));
        if (r.status != 200 || r.body.trim().isEmpty()) {
            throw imdsError("PUT /latest/api/token answered HTTP " + r.status
                    + " (IMDSv2 is required; IMDSv1 is never used)");
        }
        imdsToken = r.body.trim();
        // Renew a minute early so a token never expires between our check and the server's.
        imdsTokenExpiresAt = now + (IMDS_TOKEN_TTL_SECONDS - 60) * 1000L;
        return imdsToken;
    }

    private Response imdsRequest(String method, String path, String header, String value)
            throws LambdaException {
        String base = env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
        if (AwsCredentials.isBlank(base)) {
            base = "http://169.254.169.254";
        }
        while (base.endsWith("/")) {
            base = base.substring(0, base.length() - 1);
        }
        HttpURLConnection conn = null;
        try {
            conn = (HttpURLConnection) new URL(base + path).openConnection(Proxy.NO_PROXY);
            conn.setRequestMethod(method);
            conn.setConnectTimeout(IMDS_CONNECT_TIMEOUT_MS);
            conn.setReadTimeout(IMDS_READ_TIMEOUT_MS);
            conn.setUseCaches(false);
            conn.setInstanceFollowRedirects(false);
            conn.setRequestProperty(header, value);
            if ("PUT".equals(method)) {
                conn.setDoOutput(true);
                conn.setFixedLengthStreamingMode(0);
                OutputStream out = conn.getOutputStream();
                out.close();
            }
            int status = conn.getResponseCode();
            return new Response(status, readBody(conn));
        } catch (IOException e) {
            throw imdsError("cannot reach instance metadata at " + base + " (" + e.getClass().getSimpleName() + ")");
        } catch (SecurityException e) {
            throw missingPermission(e, "reaching instance metadata at " + base);
        }
    }

    private static LambdaException imdsError(String message) {
        return new LambdaException("credentials", null, 0, "CredentialsError",
                "no AWS credentials from EC2 instance metadata: " + message, 0, null);
    }

    // -- small shared helpers (package-private; LambdaInvoke uses them too) ------------------

    static final class Response {
        final int status;
        final String body;

        Response(int status, String body) {
            this.status = status;
            this.body = body;
        }
    }

    /** Reads the whole body (error stream for non-2xx) so the socket can be kept alive. */
    static String readBody(HttpURLConnection conn) throws IOException {
        InputStream in;
        try {
            in = conn.getInputStream();
        } catch (IOException e) {
            in = conn.getErrorStream();
            if (in == null) {
                if (conn.getResponseCode() > 0) {
                    return "";
                }
                throw e;
            }
        }
        return new String(readAll(in), StandardCharsets.UTF_8);
    }

    static byte[] readAll(InputStream in) throws IOException {
        if (in == null) {
            return new byte[0];
        }
        try {
            ByteArrayOutputStream out = new ByteArrayOutputStream(8192);
            byte[] buf = new byte[8192];
            int n;
            while ((n = in.read(buf)) >= 0) {
                out.write(buf, 0, n);
            }
            return out.toByteArray();
        } finally {
            in.close();
        }
    }

    /** An environment variable of the database server process, or null when it is not set. A read
     * the security manager denies is a LambdaException naming the permission (never "not set"). */
    static String env(String name) throws LambdaException {
        if (name == null) {
            return null;
        }
        try {
            String v = System.getenv(name);
            return AwsCredentials.isBlank(v) ? null : v;
        } catch (SecurityException e) {
            throw missingPermission(e, "reading the environment variable " + name);
        }
    }

    /** The LambdaException for a permission Oracle's JVM denied, with the grant that fixes it. */
    static LambdaException missingPermission(SecurityException e, String doing) {
        String type = "?";
        String name = "?";
        String actions = "";
        if (e instanceof java.security.AccessControlException
                && ((java.security.AccessControlException) e).getPermission() != null) {
            java.security.Permission p = ((java.security.AccessControlException) e).getPermission();
            type = p.getClass().getName();
            name = p.getName();
            actions = p.getActions() == null ? "" : p.getActions();
        }
        return new LambdaException("permission", null, 0, "JavaPermissionMissing",
                "the Java permission " + type + " \"" + name + "\"" + (actions.isEmpty() ? "" : " \"" + actions + "\"")
                        + " is not granted to the schema that owns sqlambda (needed for " + doing
                        + "); a DBA runs: EXEC DBMS_JAVA.GRANT_PERMISSION('<owner>', 'SYS:" + type + "', '" + name
                        + "', '" + actions + "'), or installs again with the spec's oracle.credentials", 0, null);
    }
}
