// Shared UI pieces: async state hook, loading/empty/error states, modal, download.

import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from '../api';

export interface AsyncState<T> {
  data: T | undefined;
  error: Error | undefined;
  loading: boolean;
}

/**
 * Runs fn whenever deps change, aborting the previous run. Keeps the last data
 * while reloading so that live refreshes do not flicker.
 */
export function useAsync<T>(fn: (signal: AbortSignal) => Promise<T>, deps: unknown[], enabled = true): AsyncState<T> {
  const [state, setState] = useState<AsyncState<T>>({ data: undefined, error: undefined, loading: enabled });
  useEffect(() => {
    if (!enabled) return;
    const ac = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    fn(ac.signal).then(
      (data) => !ac.signal.aborted && setState({ data, error: undefined, loading: false }),
      (error: Error) => {
        if (ac.signal.aborted || error.name === 'AbortError') return;
        // A bad request (e.g. a filter error) makes old data meaningless; other errors keep it.
        const bad = error instanceof ApiError && error.status === 400;
        setState((s) => ({ data: bad ? undefined : s.data, error, loading: false }));
      },
    );
    return () => ac.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, enabled]);
  return state;
}

export function Spinner({ label = 'Loading…' }: { label?: string }) {
  return (
    <div class="state loading" role="status">
      <span class="spinner" /> {label}
    </div>
  );
}

export function ErrorBox({ error, retry }: { error: Error; retry?: () => void }) {
  const api = error instanceof ApiError ? error : undefined;
  return (
    <div class="state error" role="alert">
      <strong>{api ? errorTitle(api) : 'Error'}</strong>
      <span class="msg">{error.message}</span>
      {retry && (
        <button class="btn small" onClick={retry}>
          Retry
        </button>
      )}
    </div>
  );
}

function errorTitle(e: ApiError): string {
  switch (e.code) {
    case 'bad_request':
      return 'Bad request';
    case 'unauthorized':
      return 'Not logged in';
    case 'forbidden':
      return 'Not allowed';
    case 'not_found':
      return 'Not found';
    case 'network':
      return 'API unreachable';
    default:
      return `Server error (${e.status})`;
  }
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <div class="state empty">{children}</div>;
}

export function Modal({ title, onClose, children }: { title: string; onClose: () => void; children: ComponentChildren }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const k = (e: KeyboardEvent) => e.key === 'Escape' && onClose();
    window.addEventListener('keydown', k);
    ref.current?.querySelector<HTMLElement>('input,select,textarea,button')?.focus();
    return () => window.removeEventListener('keydown', k);
  }, [onClose]);
  return (
    <div class="modal-back" onMouseDown={(e) => e.target === e.currentTarget && onClose()}>
      <div class="modal" role="dialog" aria-label={title} ref={ref}>
        <div class="modal-head">
          <span>{title}</span>
          <button class="btn ghost small" aria-label="close" onClick={onClose}>
            ✕
          </button>
        </div>
        <div class="modal-body">{children}</div>
      </div>
    </div>
  );
}

/** Saves a blob as a file through a temporary object URL. */
export function saveBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** A button with a confirmation step for destructive actions. */
export function ConfirmButton({ label, onConfirm }: { label: string; onConfirm: () => void }) {
  const [armed, setArmed] = useState(false);
  useEffect(() => {
    if (!armed) return;
    const t = setTimeout(() => setArmed(false), 4000);
    return () => clearTimeout(t);
  }, [armed]);
  return armed ? (
    <button class="btn small danger" onClick={() => (setArmed(false), onConfirm())}>
      Confirm {label.toLowerCase()}
    </button>
  ) : (
    <button class="btn small" onClick={() => setArmed(true)}>
      {label}
    </button>
  );
}
