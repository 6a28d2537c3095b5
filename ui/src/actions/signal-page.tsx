import { useSession } from '../session/session.js';
import { SignalForm } from './signal-form.js';

/** Sending a signal to whatever waits for it, from any flow. */
export function SignalPage() {
  const { client } = useSession();
  return (
    <div className="page narrow">
      <h1>Signals</h1>
      <p>A signal completes every wait task waiting for its name whose match accepts the payload, in any flow.</p>
      <SignalForm client={client} />
    </div>
  );
}
