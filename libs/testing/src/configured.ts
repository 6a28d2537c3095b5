import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { NatsServer } from '@taskstream/nats';

export interface ConfiguredNatsOptions {
  /**
   * Configuration files the server's configuration includes, as a deployment's node configuration
   * does. They are copied beside it: nats-server 2.9 resolves an include relative to the including
   * file, even an absolute one.
   */
  include: string[];
  /** Variables of the server's environment, e.g. the passwords the included files name as `$VAR`. */
  env?: Record<string, string>;
}

/** A nats-server on loopback started from a configuration file, with JetStream enabled by it. */
export class ConfiguredNats {
  private constructor(
    readonly server: NatsServer,
    private readonly dir: string,
  ) {}

  static async start(options: ConfiguredNatsOptions): Promise<ConfiguredNats> {
    const dir = mkdtempSync(join(tmpdir(), 'taskstream-nats-conf-'));
    try {
      const names = options.include.map((file) => {
        copyFileSync(file, join(dir, basename(file)));
        return basename(file);
      });
      const config = join(dir, 'server.conf');
      writeFileSync(config, ['jetstream: enabled', ...names.map((name) => `include ./${name}`), ''].join('\n'));
      mkdirSync(join(dir, 'store'));
      const server = await NatsServer.start({ storeDir: join(dir, 'store'), args: ['-c', config], env: options.env ?? {} });
      return new ConfiguredNats(server, dir);
    } catch (error) {
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
  }

  get url(): string {
    return this.server.url;
  }

  /** What the server printed last (its permission violations among it). */
  output(): string {
    return this.server.output();
  }

  /** Stops the server and removes its configuration and store. */
  async stop(): Promise<void> {
    await this.server.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
