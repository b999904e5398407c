// The sign-in form (chat page: register or sign in; console: sign in only).

import { post, describeError } from "./api.js";
import { saveSession } from "./session.js";
import { setError } from "./dom.js";

/**
 * @param {object} o
 * @param {HTMLFormElement} o.form
 * @param {HTMLInputElement} o.username
 * @param {HTMLInputElement} o.password
 * @param {HTMLElement} o.error the role=alert region
 * @param {HTMLButtonElement} o.loginButton
 * @param {HTMLButtonElement} [o.registerButton]
 * @param {(session: {username: string, token: string}) => void} o.onSignedIn
 */
export function bindAuthForm({ form, username, password, error, loginButton, registerButton, onSignedIn }) {
  const buttons = [loginButton, registerButton].filter(Boolean);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const register = registerButton !== undefined && event.submitter === registerButton;
    const name = username.value.trim();
    if (!name || !password.value) {
      setError(error, "Enter a username and a password.");
      (name ? password : username).focus();
      return;
    }
    setError(error, "");
    for (const button of buttons) button.disabled = true;
    const result = await post(register ? "/api/auth/register" : "/api/auth/login",
      { username: name, password: password.value }, { auth: false });
    for (const button of buttons) button.disabled = false;
    if (!result.ok || typeof result.data?.token !== "string") {
      setError(error, describeError(result) ?? "Sign-in failed");
      password.select();
      return;
    }
    password.value = "";
    const session = { username: result.data.username, token: result.data.token };
    saveSession(session);
    onSignedIn(session);
  });
}
