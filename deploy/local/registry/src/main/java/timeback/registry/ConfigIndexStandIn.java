package timeback.registry;

import io.apicurio.common.apps.config.DynamicConfigPropertyList;
import java.util.List;
import javax.enterprise.context.ApplicationScoped;
import javax.enterprise.inject.Produces;
import javax.inject.Singleton;

/**
 * The one bean of apicurio-common-app-components-config-index the registry needs. That module is
 * excluded (its Quarkus -deployment jar is not on Maven Central), so the list of dynamic
 * configuration properties it would have indexed is empty: the registry's runtime-configuration
 * admin API has nothing to offer, and nothing the relay uses depends on it.
 */
@ApplicationScoped
public class ConfigIndexStandIn {

    @Produces
    @Singleton
    DynamicConfigPropertyList dynamicConfigProperties() {
        return new DynamicConfigPropertyList(List.of());
    }
}
