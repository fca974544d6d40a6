/*
 * LeakyProbeProvider (test only): a provider that fails with its secret in the exception message,
 * to check that LambdaInvoke never copies a provider's message into its own error.
 */
import sqlambda.AwsCredentials;

public final class LeakyProbeProvider implements AwsCredentials.Provider {
    @Override
    public AwsCredentials resolve() {
        throw new IllegalStateException("could not use key AKIALEAKYLEAKY with secret s3cr3t-LEAK");
    }
}
