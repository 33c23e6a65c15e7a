// The filter bar: the query language with completion of field names (from
// GET /api/v1/fields), operators and values, and the server's parse errors shown
// in place at `pos`.

import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { Field } from '../api';
import { ApiError } from '../api';
import { applySuggestion, byteToIndex, completionContext, suggest, type CompletionContext, type Suggestion } from '../filter';

interface Props {
  q: string;
  onApply: (q: string) => void;
  fields: Field[];
  values: Record<string, string[]>;
  error?: Error;
  disabled?: boolean;
}

export function FilterBar({ q, onApply, fields, values, error, disabled }: Props) {
  const [text, setText] = useState(q);
  const [cursor, setCursor] = useState(q.length);
  const [open, setOpen] = useState(false);
  const [active, setActive] = useState(0);
  // Enter takes a suggestion only after the user moved in the list; otherwise it applies.
  const [navigated, setNavigated] = useState(false);
  const input = useRef<HTMLInputElement>(null);

  useEffect(() => setText(q), [q]);

  // "/" focuses the filter from anywhere.
  useEffect(() => {
    const k = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement;
      if (e.key === '/' && !/INPUT|TEXTAREA|SELECT/.test(t.tagName)) {
        e.preventDefault();
        input.current?.focus();
      }
    };
    window.addEventListener('keydown', k);
    return () => window.removeEventListener('keydown', k);
  }, []);

  const ctx: CompletionContext = useMemo(() => completionContext(text, cursor), [text, cursor]);
  const items: Suggestion[] = useMemo(() => (open ? suggest(ctx, fields, values) : []), [open, ctx, fields, values]);
  useEffect(() => setActive(0), [items.length, ctx.start]);

  const accept = (s: Suggestion) => {
    const r = applySuggestion(text, ctx, s);
    // Update the field and its caret now (not on the next frame): keys typed right
    // after must land after the completion.
    const el = input.current;
    if (el) {
      el.value = r.q;
      el.focus();
      el.setSelectionRange(r.cursor, r.cursor);
    }
    setText(r.q);
    setCursor(r.cursor);
  };

  const onKey = (e: KeyboardEvent) => {
    const show = open && items.length > 0;
    if (show && e.key === 'ArrowDown') {
      e.preventDefault();
      setNavigated(true);
      setActive((a) => (a + 1) % items.length);
    } else if (show && e.key === 'ArrowUp') {
      e.preventDefault();
      setNavigated(true);
      setActive((a) => (a - 1 + items.length) % items.length);
    } else if (show && (e.key === 'Tab' || (e.key === 'Enter' && navigated))) {
      e.preventDefault();
      setNavigated(false);
      accept(items[active]);
    } else if (e.key === 'Enter') {
      e.preventDefault();
      setOpen(false);
      onApply(text.trim());
    } else if (e.key === 'Escape') {
      if (open) setOpen(false);
      else {
        setText(q);
        input.current?.blur();
      }
    } else if (e.key === ' ' && e.ctrlKey) {
      e.preventDefault();
      setOpen(true);
    }
  };

  const track = () => {
    const el = input.current;
    if (el) setCursor(el.selectionStart ?? el.value.length);
  };

  const apiErr = error instanceof ApiError && error.status === 400 ? error : undefined;
  const pos = apiErr?.pos !== undefined && text === q ? byteToIndex(q, apiErr.pos) : undefined;

  return (
    <div class={`filterbar ${apiErr ? 'has-error' : ''}`}>
      <div class="filter-input">
        <span class="filter-icon" aria-hidden="true">
          ⌕
        </span>
        <input
          ref={input}
          type="text"
          spellcheck={false}
          autocomplete="off"
          disabled={disabled}
          aria-label="filter"
          data-testid="filter"
          placeholder='filter, e.g. host ~ "api\." and status >= 500 and not method in (GET, HEAD)   (/ to focus, Tab or ↓⏎ to complete, ⏎ to apply)'
          value={text}
          onInput={(e) => {
            setText((e.target as HTMLInputElement).value);
            track();
            setOpen(true);
            setNavigated(false);
          }}
          onKeyDown={onKey}
          onKeyUp={track}
          onClick={track}
          onFocus={() => setOpen(true)}
          onBlur={() => setTimeout(() => setOpen(false), 150)}
        />
        {text !== q && !disabled && (
          <button class="btn small primary" onClick={() => onApply(text.trim())}>
            Apply ⏎
          </button>
        )}
        {q && !disabled && (
          <button class="btn small ghost" title="clear the filter" onClick={() => onApply('')}>
            ✕
          </button>
        )}
        {open && items.length > 0 && (
          <ul class="completions" role="listbox" data-testid="completions">
            {items.map((s, i) => (
              <li
                role="option"
                aria-selected={i === active}
                class={i === active ? 'active' : ''}
                onMouseDown={(e) => {
                  e.preventDefault();
                  accept(s);
                }}
              >
                <span class="c-label">{s.label}</span>
                {s.detail && <span class="c-detail">{s.detail}</span>}
              </li>
            ))}
          </ul>
        )}
      </div>
      {apiErr && (
        <div class="filter-error" role="alert" data-testid="filter-error">
          {pos !== undefined ? (
            <code>
              {q.slice(0, pos)}
              <mark>{q.slice(pos, pos + 1) || ' '}</mark>
              {q.slice(pos + 1)}
            </code>
          ) : null}
          <span>
            {pos !== undefined ? `at ${pos + 1}: ` : ''}
            {apiErr.message}
          </span>
        </div>
      )}
    </div>
  );
}
