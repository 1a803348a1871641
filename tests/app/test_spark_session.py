"""The local Spark session's JVM: what `pulse.spark.get_spark` asks of it is what it runs with."""

from __future__ import annotations

import pytest

from pulse.spark import DRIVER_JAVA_OPTIONS, extra_conf


def test_the_local_jvm_runs_the_parallel_collector_in_utc(spark) -> None:
    jvm = spark._jvm
    collectors = {
        bean.getName() for bean in jvm.java.lang.management.ManagementFactory.getGarbageCollectorMXBeans()
    }
    # The parallel collector's two (Java 17); G1's would be "G1 Young Generation" and "G1 Old Generation".
    assert collectors == {"PS Scavenge", "PS MarkSweep"}, collectors
    assert jvm.java.util.TimeZone.getDefault().getID() == "UTC"
    # Spark puts its own options (the module opens) before them.
    assert spark.sparkContext.getConf().get("spark.driver.extraJavaOptions").endswith(DRIVER_JAVA_OPTIONS)


def test_pulse_spark_conf_carries_jvm_options_with_spaces_as_one_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # get_spark applies these after its own settings, so this value replaces DRIVER_JAVA_OPTIONS.
    monkeypatch.setenv("PULSE_SPARK_CONF", "spark.driver.extraJavaOptions=-Duser.timezone=UTC -XX:+UseG1GC")
    assert extra_conf() == {"spark.driver.extraJavaOptions": "-Duser.timezone=UTC -XX:+UseG1GC"}
