import type { StatusLook } from './status.js';

/** A status as icon, word and colour together. */
export function StatusBadge({ look }: { look: StatusLook }) {
  return (
    <span className="status-badge" style={{ background: look.fill, borderColor: look.border }}>
      <span aria-hidden="true">{look.icon}</span> {look.label}
    </span>
  );
}
