/**
 * An in-process MQTT broker (`npm:aedes`) on a free 127.0.0.1 port, for the demo only: the
 * product and its tests use a real broker (mosquitto).
 *
 * @module
 */
import { Aedes } from "aedes";
import net from "node:net";

/** A running in-process broker. */
export interface EmbeddedBroker {
  /** `mqtt://127.0.0.1:PORT`. */
  url: string;
  /** Closes the listener and the broker. */
  close(): Promise<void>;
}

/** Starts aedes on 127.0.0.1 with an ephemeral port. */
export async function startEmbeddedBroker(): Promise<EmbeddedBroker> {
  const broker = await Aedes.createBroker();
  const server = net.createServer(broker.handle);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `mqtt://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => broker.close(() => resolve()));
        // close() waits for open sockets; clients are ended before this is called
      }),
  };
}
