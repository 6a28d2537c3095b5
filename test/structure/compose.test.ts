import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';

/*
 * docker-compose.yml cannot be run where the tests run (no Docker engine), so what can rot without
 * anyone noticing is checked here against the files it points at: mounted files, NATS users and
 * passwords, the provisioning order, Prometheus targets and Grafana's provisioning.
 */

const root = join(import.meta.dirname, '..', '..');
const read = (path: string) => readFileSync(join(root, path), 'utf8');
const yamlAt = (path: string) => parse(read(path), { merge: true });

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  entrypoint?: string[];
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  expose?: string[];
  depends_on?: string[] | Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  restart?: string;
}

const COMPOSE_FILE = 'docker-compose.yml';
const compose = yamlAt(COMPOSE_FILE) as { services: Record<string, Service>; volumes?: Record<string, unknown> };
const services = Object.entries(compose.services);
const TASKSTREAM_KINDS = ['gateway', 'planner', 'dispatcher', 'executor', 'projector', 'scheduler'];
const DOCKERFILE = 'deploy/Dockerfile';

/** What a container built from this repository runs: a service's own main.js, or the CLI command it names. */
function kindOf(service: Service): string | undefined {
  if (service.build?.dockerfile !== DOCKERFILE) return undefined;
  const main = /^services\/([a-z]+)\/dist\/main\.js$/.exec(service.entrypoint?.find((arg) => arg.endsWith('main.js')) ?? '');
  return main ? main[1] : service.command?.[0];
}

const taskstream = services.filter(([, s]) => TASKSTREAM_KINDS.includes(kindOf(s) ?? ''));
const provisioners = services.filter(([, s]) => kindOf(s) === 'provision');
const natsServers = services.filter(([, s]) => s.image?.startsWith('nats:'));

interface Mount {
  source: string;
  target: string;
  bind: boolean;
}

const mounts = (service: Service): Mount[] =>
  (service.volumes ?? []).map((spec) => {
    const [source, target] = spec.split(':') as [string, string];
    return { source, target, bind: source.startsWith('.') || source.startsWith('/') };
  });

/** The uncommented `include` lines of a nats-server configuration. */
const includesOf = (path: string) => [...read(path).matchAll(/^\s*include\s+["']?([^"'\s]+)/gm)].map((m) => m[1]!);

/** permissions.conf's users and the variable each takes its password from. */
function natsUsers(): Map<string, string> {
  const text = read('deploy/nats/permissions.conf')
    .split('\n')
    .filter((line) => !line.trim().startsWith('#'))
    .join('\n');
  return new Map([...text.matchAll(/\buser:\s*(\w+)\s+password:\s*\$(\w+)/g)].map((m) => [m[1]!, m[2]!]));
}

/** `${NAME:?message}`, compose's way of refusing to start without NAME. */
const required = (value: string | undefined) => /^\$\{(\w+):\?(.+)\}$/.exec(value ?? '');

const dependencies = (service: Service): Record<string, { condition: string }> =>
  Array.isArray(service.depends_on) ? Object.fromEntries(service.depends_on.map((name) => [name, { condition: 'service_started' }])) : (service.depends_on ?? {});

/** Ports a container serves on all its interfaces, as far as its definition says. */
function servedPorts(service: Service): string[] {
  const env = service.environment ?? {};
  const metrics = env.TASKSTREAM_METRICS_PORT !== undefined && env.TASKSTREAM_METRICS_HOST === '0.0.0.0' ? [env.TASKSTREAM_METRICS_PORT] : [];
  const flag = (service.command ?? []).flatMap((arg, i, all) => (arg.startsWith('-port=') ? [arg.slice(6)] : arg === '-port' ? [all[i + 1]!] : []));
  const published = (service.ports ?? []).map((spec) => spec.split(':').at(-1)!);
  return [...new Set([...metrics, ...flag, ...(service.expose ?? []), ...published].map(String))];
}

/** Every host:port Prometheus scrapes. */
function scrapeTargets(): Array<{ job: string; host: string; port: string }> {
  const config = yamlAt('deploy/prometheus/prometheus.yml') as { scrape_configs: any[] };
  return config.scrape_configs.flatMap((job) => [
    ...(job.dns_sd_configs ?? []).flatMap((sd: any) => sd.names.map((host: string) => ({ job: job.job_name, host, port: String(sd.port) }))),
    ...(job.static_configs ?? []).flatMap((sc: any) => sc.targets.map((target: string) => ({ job: job.job_name, host: target.split(':')[0]!, port: target.split(':')[1]! }))),
  ]);
}

/** Every string value in a parsed YAML document. */
function stringsIn(node: unknown): string[] {
  if (typeof node === 'string') return [node];
  if (node === null || typeof node !== 'object') return [];
  return Object.values(node).flatMap(stringsIn);
}

/** The uid of every `datasource` a dashboard's panels and targets name. */
function dataSourceUids(node: unknown): string[] {
  if (Array.isArray(node)) return node.flatMap(dataSourceUids);
  if (node === null || typeof node !== 'object') return [];
  return Object.entries(node).flatMap(([key, value]) => (key === 'datasource' && typeof (value as { uid?: unknown })?.uid === 'string' ? [(value as { uid: string }).uid] : dataSourceUids(value)));
}

describe('docker-compose.yml', () => {
  it('runs every Taskstream service, built from this repository', () => {
    expect(new Set(taskstream.map(([, s]) => kindOf(s)))).toEqual(new Set(TASKSTREAM_KINDS));
    expect(existsSync(join(root, DOCKERFILE))).toBe(true);
    for (const [name, service] of services) {
      expect(service.image !== undefined || service.build !== undefined, `${name} has neither an image nor a build`).toBe(true);
      if (service.build) expect(existsSync(join(root, service.build.context, service.build.dockerfile)), `${name}: ${service.build.dockerfile}`).toBe(true);
      const main = service.entrypoint?.find((arg) => arg.endsWith('main.js'));
      if (main) expect(existsSync(join(root, main.replace('/dist/main.js', '/src/main.ts'))), `${name}: the source of ${main}`).toBe(true);
    }
  });

  it('mounts only files that exist in the repository, and named volumes it declares', () => {
    for (const [name, service] of services) {
      for (const mount of mounts(service)) {
        if (mount.bind) expect(existsSync(join(root, mount.source)), `${name} mounts ${mount.source}, which does not exist`).toBe(true);
        else expect(Object.keys(compose.volumes ?? {}), `${name} uses the volume ${mount.source}`).toContain(mount.source);
      }
    }
  });

  it('mounts what each NATS configuration includes beside it', () => {
    expect(natsServers.length).toBeGreaterThanOrEqual(1);
    for (const [name, service] of natsServers) {
      const files = mounts(service).filter((m) => m.bind && m.source.endsWith('.conf'));
      const main = files.find((m) => service.command?.includes(m.target));
      expect(main, `${name} runs a configuration it mounts`).toBeDefined();
      const included = includesOf(main!.source).map((path) => posix.join(posix.dirname(main!.target), path));
      expect(included.length, `${name}: ${main!.source} includes nothing`).toBeGreaterThan(0);
      for (const target of included) {
        const mounted = files.find((m) => m.target === target);
        expect(mounted, `${name}: ${main!.source} includes ${target}, which is not mounted`).toBeDefined();
      }
      // The users are in force, not just present in the repository.
      expect(files.filter((m) => included.includes(m.target)).map((m) => posix.normalize(m.source))).toContain('deploy/nats/permissions.conf');
    }
  });

  it('gives each nats-server every password permissions.conf names, refusing to start without one', () => {
    const variables = [...natsUsers().values()];
    expect(variables.length).toBeGreaterThanOrEqual(6);
    for (const [name, service] of natsServers) {
      for (const variable of variables) expect(required(service.environment?.[variable])?.[1], `${name}: ${variable}`).toBe(variable);
    }
  });

  it('runs every Taskstream service as its own NATS user of permissions.conf, with only its password, never provisioning', () => {
    const users = natsUsers();
    const passwordVariables = new Set(users.values());
    for (const [name, service] of taskstream) {
      const env = service.environment ?? {};
      const user = env.TASKSTREAM_NATS_USER;
      expect(user, `${name}'s NATS user`).toBe(kindOf(service));
      expect(users.has(user!), `${name}: user ${user} is not in permissions.conf`).toBe(true);
      expect(required(env.TASKSTREAM_NATS_PASSWORD)?.[1], `${name}'s password`).toBe(users.get(user!));
      const others = Object.values(env).flatMap((value) => [...value.matchAll(/\$\{(\w+)/g)].map((m) => m[1]!)).filter((v) => passwordVariables.has(v) && v !== users.get(user!));
      expect(others, `${name} is given another user's password`).toEqual([]);
      expect(env.TASKSTREAM_PROVISION, `${name} must only check the streams`).toBe('false');
    }
  });

  it('provisions once, as the provisioner, after NATS is healthy and before every Taskstream service', () => {
    expect(provisioners.map(([name]) => name)).toHaveLength(1);
    const [provisionName, provision] = provisioners[0]!;
    const env = provision.environment ?? {};
    expect(env.TASKSTREAM_NATS_USER).toBe('provisioner');
    expect(required(env.TASKSTREAM_NATS_PASSWORD)?.[1]).toBe(natsUsers().get('provisioner'));
    // A one-shot: restarted after it succeeded it would run for ever.
    expect(['always', 'unless-stopped'].includes(provision.restart ?? 'no'), `${provisionName} restarts after it succeeded`).toBe(false);
    for (const [name, server] of natsServers) {
      expect(dependencies(provision)[name]?.condition, `${provisionName} waits for ${name}`).toBe('service_healthy');
      expect(server.healthcheck?.test.length, `${name} has a health check`).toBeGreaterThan(0);
    }
    for (const [name, service] of taskstream) {
      expect(dependencies(service)[provisionName]?.condition, `${name} waits for ${provisionName}`).toBe('service_completed_successfully');
      // The same streams: the same cluster, with as many replicas as the services expect.
      expect(service.environment?.TASKSTREAM_NATS_URL, name).toBe(env.TASKSTREAM_NATS_URL);
      expect(service.environment?.TASKSTREAM_REPLICAS, name).toBe(env.TASKSTREAM_REPLICAS);
    }
    expect(Number(env.TASKSTREAM_REPLICAS)).toBeLessThanOrEqual(natsServers.length);
  });

  it('asks for every secret with a message naming it, and documents each at its top and in deploy/README.md', () => {
    const text = read(COMPOSE_FILE);
    // Compose substitutes variables in values only; `$$` is a literal dollar.
    const references = stringsIn(compose).flatMap((value) => [...value.replace(/\$\$/g, '').matchAll(/\$(\{[^}]*\}|\w*)/g)].map((m) => m[0]));
    expect(references.length).toBeGreaterThan(0);
    const header = text.slice(0, text.search(/^[^#\n]/m));
    const readme = read('deploy/README.md');
    for (const reference of references) {
      const [, variable, message] = required(reference) ?? [];
      expect(variable, `${reference} has no :? error`).toBeDefined();
      expect(message, reference).toContain(variable);
      expect(header, `the top of ${COMPOSE_FILE} does not mention ${variable}`).toContain(variable);
      expect(readme, `deploy/README.md does not mention ${variable}`).toContain(variable);
    }
  });
});

describe('deploy/prometheus/prometheus.yml against docker-compose.yml', () => {
  const targets = scrapeTargets();

  it('is what the Prometheus service runs', () => {
    const prometheus = services.filter(([, s]) => s.image?.startsWith('prom/prometheus'));
    expect(prometheus).toHaveLength(1);
    expect(mounts(prometheus[0]![1])).toContainEqual({ source: './deploy/prometheus/prometheus.yml', target: '/etc/prometheus/prometheus.yml', bind: true });
  });

  it('scrapes only compose services, at a port each serves', () => {
    expect(targets.length).toBeGreaterThan(0);
    for (const { job, host, port } of targets) {
      const service = compose.services[host];
      expect(service, `job ${job} scrapes ${host}, which is not a compose service`).toBeDefined();
      expect(servedPorts(service!), `job ${job} scrapes ${host}:${port}`).toContain(port);
    }
  });

  it('scrapes every Taskstream container and every NATS exporter', () => {
    const scraped = new Set(targets.map((t) => t.host));
    const exporters = services.filter(([, s]) => s.image?.includes('prometheus-nats-exporter'));
    expect(exporters.length).toBe(natsServers.length);
    for (const [name] of [...taskstream, ...exporters]) expect(scraped.has(name), `${name} is not scraped`).toBe(true);
  });

  it('has each NATS exporter read a nats-server monitoring port that is configured', () => {
    for (const [name, exporter] of services.filter(([, s]) => s.image?.includes('prometheus-nats-exporter'))) {
      const url = new URL(exporter.command!.find((arg) => arg.startsWith('http://'))!);
      const server = compose.services[url.hostname];
      expect(server?.image, `${name} reads ${url.hostname}`).toMatch(/^nats:/);
      const config = mounts(server!).find((m) => server!.command?.includes(m.target))!;
      expect(read(config.source), `${config.source} serves monitoring on ${url.port}`).toMatch(new RegExp(`^http:\\s*0\\.0\\.0\\.0:${url.port}$`, 'm'));
    }
  });
});

describe('deploy/grafana against docker-compose.yml', () => {
  const grafana = services.find(([, s]) => s.image?.startsWith('grafana/grafana'))?.[1];
  const grafanaMounts = mounts(grafana ?? {});
  const datasources = yamlAt('deploy/grafana/provisioning/datasources/prometheus.yml') as { datasources: Array<{ uid: string; url: string }> };

  it('mounts the provisioning folder where Grafana reads it', () => {
    expect(grafana).toBeDefined();
    expect(grafanaMounts).toContainEqual({ source: './deploy/grafana/provisioning', target: '/etc/grafana/provisioning', bind: true });
  });

  it('points the data source at the Prometheus service, on a port it serves', () => {
    for (const { url } of datasources.datasources) {
      const { hostname, port } = new URL(url);
      expect(compose.services[hostname]?.image, url).toMatch(/^prom\/prometheus/);
      expect(servedPorts(compose.services[hostname]!)).toContain(port);
    }
  });

  it('loads the dashboards from a mounted folder, and they use the provisioned data source', () => {
    const provider = yamlAt('deploy/grafana/provisioning/dashboards/taskstream.yml') as { providers: Array<{ options: { path: string } }> };
    const uids = new Set(datasources.datasources.map((d) => d.uid));
    for (const { options } of provider.providers) {
      const folder = grafanaMounts.find((m) => m.target === options.path);
      expect(folder, `nothing is mounted at ${options.path}`).toBeDefined();
      const dashboards = readdirSync(join(root, folder!.source)).filter((f) => f.endsWith('.json') && statSync(join(root, folder!.source, f)).isFile());
      expect(dashboards.length).toBeGreaterThan(0);
      for (const file of dashboards) {
        const used = dataSourceUids(JSON.parse(read(join(folder!.source, file))));
        expect(used.length, file).toBeGreaterThan(0);
        for (const uid of used) expect(uids.has(uid), `${file} uses the data source ${uid}`).toBe(true);
      }
    }
  });
});
