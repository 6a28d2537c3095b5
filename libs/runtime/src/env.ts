import { checkKnownVariables } from './known-variables.js';
import { COMMON_SETTINGS, NATS_AUTH_SETTINGS, readSettings, SettingError, type SettingValues } from './settings.js';

/** How a connection authenticates: `user` (and `password`), or `credsFile`, or nothing. */
export interface NatsAuth {
  user?: string;
  password?: string;
  /** Path of a NATS credentials file: a user JWT and its nkey seed. */
  credsFile?: string;
}

/** The settings every service shares (COMMON_SETTINGS), the NATS user, password and credentials as one NatsAuth. */
export interface CommonEnv extends Omit<SettingValues<typeof COMMON_SETTINGS>, keyof typeof NATS_AUTH_SETTINGS> {
  natsAuth: NatsAuth;
}

/** Reads the settings every service shares from the environment; an invalid one throws a SettingError naming it. */
export function readCommonEnv(env: NodeJS.ProcessEnv = process.env): CommonEnv {
  checkKnownVariables(env);
  const { natsUser: _user, natsPassword: _password, natsCreds: _creds, ...common } = readSettings(COMMON_SETTINGS, env);
  return { ...common, natsAuth: readNatsAuth(env) };
}

/**
 * TASKSTREAM_NATS_USER and TASKSTREAM_NATS_PASSWORD, or TASKSTREAM_NATS_CREDS. Both kinds at once
 * are refused rather than one silently preferred: the server would accept only one of them, and
 * which one the operator meant is not ours to guess.
 */
export function readNatsAuth(env: NodeJS.ProcessEnv = process.env): NatsAuth {
  const { natsUser, natsPassword, natsCreds } = readSettings(NATS_AUTH_SETTINGS, env);
  const { natsUser: userSetting, natsPassword: passwordSetting, natsCreds: credsSetting } = NATS_AUTH_SETTINGS;
  if (natsCreds !== '') {
    const alongside = [natsUser !== '' && userSetting.env, natsPassword !== '' && passwordSetting.env].filter((name) => name !== false);
    if (alongside.length > 0) {
      throw new SettingError(
        credsSetting.env,
        `${credsSetting.env} and ${alongside.join(' and ')} are both set: a NATS connection authenticates with a credentials file or with a user and password, not both; unset one`,
      );
    }
    return { credsFile: natsCreds };
  }
  if (natsUser === '' && natsPassword !== '') throw new SettingError(passwordSetting.env, `${passwordSetting.env} is set but ${userSetting.env} is not: set the NATS user too`);
  return natsUser === '' ? {} : { user: natsUser, password: natsPassword };
}

export function intFrom(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a whole number, not "${raw}"`);
  return value;
}

export function boolFrom(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new Error(`${name} must be true or false, not "${raw}"`);
}
