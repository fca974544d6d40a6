/*
 * AwsCredentials: one immutable set of AWS credentials, and the Provider interface a DBA can
 * implement to supply them.
 *
 * Owns: holding an access key id, secret key, optional session token and optional expiry.
 * Must not: print its secrets. toString() names only the source, never a key, so a credential
 * can end up in a log line or an exception message only if someone reads a getter on purpose.
 *
 * Load order: 2 (no dependencies).
 */
package sqlambda;

public final class AwsCredentials {

    /**
     * A source of credentials a DBA configures (first in the resolution order). Implement it in
     * a class with a public no-argument constructor, load it into the same schema, and name it
     * with LambdaInvoke.configure_credentials_provider('pkg.ClassName').
     */
    public interface Provider {
        /** Current credentials, or null to fall through to the next source in the chain. */
        AwsCredentials resolve() throws Exception;
    }

    private final String accessKeyId;
    private final String secretAccessKey;
    private final String sessionToken;
    /** Expiry in epoch milliseconds, or 0 when the credentials do not expire. */
    private final long expiresAtMillis;
    private final String source;

    public AwsCredentials(String accessKeyId, String secretAccessKey, String sessionToken,
                          long expiresAtMillis, String source) {
        if (isBlank(accessKeyId) || isBlank(secretAccessKey)) {
            throw new IllegalArgumentException("AWS credentials need an access key id and a secret key");
        }
        this.accessKeyId = accessKeyId.trim();
        this.secretAccessKey = secretAccessKey.trim();
        this.sessionToken = isBlank(sessionToken) ? null : sessionToken.trim();
        this.expiresAtMillis = expiresAtMillis;
        this.source = source == null ? "unknown" : source;
    }

    public AwsCredentials(String accessKeyId, String secretAccessKey, String sessionToken) {
        this(accessKeyId, secretAccessKey, sessionToken, 0L, "static");
    }

    static boolean isBlank(String s) {
        return s == null || s.trim().isEmpty();
    }

    public String getAccessKeyId() {
        return accessKeyId;
    }

    public String getSecretAccessKey() {
        return secretAccessKey;
    }

    /** The session token, or null for long-term keys. */
    public String getSessionToken() {
        return sessionToken;
    }

    public long getExpiresAtMillis() {
        return expiresAtMillis;
    }

    /** Where the credentials came from ("environment", "imds:role-name", ...), safe to log. */
    public String getSource() {
        return source;
    }

    /** Replaces every occurrence of a secret part of these credentials in text with "***". */
    public String redact(String text) {
        if (text == null) {
            return null;
        }
        String out = text;
        if (sessionToken != null) {
            out = out.replace(sessionToken, "***");
        }
        out = out.replace(secretAccessKey, "***");
        return out.replace(accessKeyId, "***");
    }

    @Override
    public String toString() {
        return "AwsCredentials[source=" + source + "]";
    }
}
