"""Results to the provincial exam server over MQTT: outbox, relay, contract, status manifest."""
