/*
 * ClobFactory: where LambdaInvoke gets a new CLOB for a result too big for VARCHAR2.
 *
 * Owns: the one seam between the client and a database connection. Inside Oracle the default,
 * ClobFactory.DefaultConnection, asks the session's own server-side connection
 * (DriverManager.getConnection("jdbc:default:connection:")) for a temporary CLOB; on a plain JVM
 * (tests, benchmarks) callers install a factory that returns javax.sql.rowset.serial.SerialClob.
 * Must not: open a network connection or keep the connection in a field (the default
 * connection belongs to the calling session; closing it is a no-op inside Oracle).
 *
 * Load order: 8 (no dependencies).
 */
package sqlambda;

import java.sql.Clob;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;

public interface ClobFactory {

    /** A new CLOB holding content. */
    Clob createClob(String content) throws SQLException;

    /** The factory used inside Oracle: a temporary CLOB from the calling session. */
    final class DefaultConnection implements ClobFactory {
        @Override
        public Clob createClob(String content) throws SQLException {
            Connection conn = DriverManager.getConnection("jdbc:default:connection:");
            Clob clob = conn.createClob();
            clob.setString(1L, content);
            return clob;
        }
    }
}
