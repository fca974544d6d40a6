/*
 * ProbeCredentialsProvider (test only): a DBA-style credentials provider, loaded by class name
 * through LambdaInvoke.configure_credentials_provider, that hands out the local stack's keys.
 */
import sqlambda.AwsCredentials;

public final class ProbeCredentialsProvider implements AwsCredentials.Provider {
    public static int calls;

    @Override
    public AwsCredentials resolve() {
        calls++;
        return new AwsCredentials("test", "test", null, 0L, "probe-provider");
    }
}
