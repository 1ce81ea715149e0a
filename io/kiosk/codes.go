package kiosk

// Code is a kiosk response code (F39, 2 characters).
type Code string

// The response codes of the kiosk link; Codes describes each.
const (
	Approved          Code = "00"
	BankDeclined      Code = "05"
	InvalidTxn        Code = "12"
	InvalidAmount     Code = "13"
	InvalidBankCard   Code = "14"
	UnknownReference  Code = "25"
	FormatError       Code = "30"
	InsufficientFunds Code = "51"
	CardExpired       Code = "54"
	WrongPIN          Code = "55"
	OverAmountLimit   Code = "61"
	PINTriesExceeded  Code = "75"
	BankUnavailable   Code = "91"
	PlatformDown      Code = "92"
	Duplicate         Code = "94"
	SystemError       Code = "96"
	NotRegistered     Code = "97"
	BankTimeout       Code = "98"
	MACError          Code = "A0"
	SignInAgain       Code = "A1"
	CardBlocked       Code = "C1"
	OverCeiling       Code = "C2"
	CardCheckFailed   Code = "C3"
	CardUnknown       Code = "C4"
	PendingFirst      Code = "C5"
	NotApplied        Code = "C6"
	ResolveFirst      Code = "C7"
	TACInvalid        Code = "C8"
)

// CodeInfo is one row of the response code table: what the operator reads in the journal,
// and the text the kiosk shows the person in front of it, in Chinese and English. Kiosk
// makers take the screen texts from this table so every kiosk says the same thing.
type CodeInfo struct {
	Code     Code
	Operator string // meaning for the operator and what the FEP has done
	Chinese  string // shown at the kiosk
	English  string // shown at the kiosk
	// Unsigned marks codes the FEP may send without F64: it may not hold a MAK it can use
	// (kiosk not signed in, MAC failed, message not understood). The kiosk treats such a
	// response as "not done" and never as an approval.
	Unsigned bool
}

// Codes is the response code table in code order (docs/protocols/kiosk.md section 6).
func Codes() []CodeInfo {
	return []CodeInfo{
		{Approved, "approved / done", "交易成功", "Transaction successful.", false},
		{BankDeclined, "bank declined (do not honour); no debit", "银行拒绝交易，请联系发卡银行", "Declined by your bank. Please contact your bank.", false},
		{InvalidTxn, "transaction not allowed in this state (e.g. confirm of a load never approved)", "交易无效", "Invalid transaction.", false},
		{InvalidAmount, "amount zero, not whole fen or outside kiosk limits", "金额无效，请重新输入", "Invalid amount. Please enter it again.", false},
		{InvalidBankCard, "bank card number invalid or not accepted", "银行卡无效", "This bank card cannot be used.", false},
		{UnknownReference, "reference number unknown to FEP/platform", "原交易不存在", "Original transaction not found.", false},
		{FormatError, "message not understood (field missing/invalid); fix the kiosk", "系统故障，请稍后再试", "System error. Please try again later.", true},
		{InsufficientFunds, "bank: insufficient funds; no debit", "银行卡余额不足", "Insufficient funds on your bank card.", false},
		{CardExpired, "bank: card expired", "银行卡已过期", "Your bank card has expired.", false},
		{WrongPIN, "bank: wrong PIN; no debit", "密码错误，请重新输入", "Wrong PIN. Please try again.", false},
		{OverAmountLimit, "bank: over the card's amount limit", "超出银行卡交易限额", "Amount over your bank card's limit.", false},
		{PINTriesExceeded, "bank: PIN tries exceeded, card locked by bank", "密码错误次数超限，请联系发卡银行", "Too many wrong PINs. Please contact your bank.", false},
		{BankUnavailable, "bank link down or bank unavailable; nothing debited", "银行系统暂停服务，请稍后再试", "Bank service unavailable. Please try again later.", false},
		{PlatformDown, "one-card platform unreachable; nothing booked, or booking pending (the FEP resolves it)", "一卡通系统暂停服务，请稍后再试", "Card service unavailable. Please try again later.", false},
		{Duplicate, "same terminal + trace + date seen already; nothing done again", "重复交易", "Duplicate transaction.", false},
		{SystemError, "FEP internal error", "系统故障，请稍后再试", "System error. Please try again later.", false},
		{NotRegistered, "terminal id or PSAM number not registered at the FEP", "终端未登记，请联系管理员", "Terminal not registered. Please contact support.", true},
		{BankTimeout, "bank did not answer; the debit, if any, is being reversed", "银行超时，如已扣款将自动退回", "Bank timeout. Any debit will be returned automatically.", false},
		{MACError, "request MAC (F64) failed; kiosk must sign in again", "通讯校验错误，请稍后再试", "Communication check failed. Please try again.", true},
		{SignInAgain, "kiosk not signed in or batch stale; sign in, then retry", "终端需重新签到，请稍后再试", "Terminal is signing in. Please try again shortly.", true},
		{CardBlocked, "platform: e-purse card blocked (blacklisted)", "该卡已挂失或锁定，请到服务网点处理", "This card is blocked. Please visit a service centre.", false},
		{OverCeiling, "platform: balance + amount over the card's ceiling", "充值后余额超过上限，请减少金额", "Balance would exceed the card limit. Please load less.", false},
		{CardCheckFailed, "platform: MAC1 invalid (card data altered or wrong key)", "卡片校验失败，请重新放卡", "Card check failed. Please place your card again.", false},
		{CardUnknown, "platform: card not issued by this scheme", "该卡不能在此充值", "This card cannot be loaded here.", false},
		{PendingFirst, "card has booked loads not yet written; run PENDING QUERY and re-write first", "该卡有未完成的充值，正在补写", "Your card has an unfinished load. Completing it first.", false},
		{NotApplied, "U resolution: the pending load is not on the card; re-write it", "充值未写入卡片，正在补写", "The load is not on your card yet. Writing it now.", false},
		{ResolveFirst, "re-write refused: card serial moved since the load; send U RESOLUTION evidence first", "正在核对卡片记录", "Checking your card's records.", false},
		{TACInvalid, "TAC did not verify; load left for manual handling", "交易凭证校验失败，请联系客服", "Card receipt check failed. Please contact support.", false},
	}
}

// Info returns the table row of c; ok is false for a code the table does not define.
func (c Code) Info() (CodeInfo, bool) {
	for _, i := range Codes() {
		if i.Code == c {
			return i, true
		}
	}
	return CodeInfo{}, false
}
